import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backupTasks, eventsOf } from '@cairn/test-harness/clock';
import { backends } from '@cairn/test-harness/databases';
import { waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];
const fast = { durationMs: 0, steps: 1, sizeBytes: 1000 };
const sla = { cron: '0 3 * * *', timezone: 'UTC', keepLast: 3 };

/** The schedule the dummy "backup system" keeps for an instance, if any. */
function scheduleFile(storeDir: string, instanceId: string): { sla: typeof sla } | undefined {
  const file = path.join(storeDir, 'schedules', `${instanceId}.json`);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { sla: typeof sla }) : undefined;
}

describe.each(backends)('provider-side schedules (%s)', (backend) => {
  const stack = withStack(backend, { clockAt: '2026-03-27T12:00:00Z', agents: [{ name: 'sched-host' }] });
  let admin: Api;
  let tenant: Api;
  let tenantId: string;
  const dirs = {
    managed: stack.tempDir('sched-managed'),
    cairn: stack.tempDir('sched-cairn'),
    refusing: stack.tempDir('sched-refusing'),
  };
  const offerings: Record<string, string> = {};
  const ins: Record<string, string> = {};

  const step = (iso: string) => stack.step(iso);
  const instance = async (name: string) =>
    (await admin.expect(201, 'POST', '/v1/instances', { name, zone: 'zone-a', locator: { vm: name }, tenantId }))
      .id as string;
  const scheduleTasks = async (instanceId: string, kind: string): Promise<TaskBody[]> =>
    (await admin.expect(200, 'GET', `/v1/tasks?kind=${kind}&instanceId=${instanceId}&limit=100`)).items;
  /** Assigns and waits for the configure-schedule task the 202 names. */
  const assign = async (instanceId: string, offeringId: string): Promise<TaskBody> => {
    const res = await tenant.expect(202, 'PUT', `/v1/instances/${instanceId}/offering`, { offeringId });
    expect(res.instance).toMatchObject({
      offeringId,
      schedule: { owner: null, state: 'configuring', taskId: res.task.id },
    });
    expect(res.task).toMatchObject({ kind: 'configure-schedule', instanceId, tenantId });
    return waitForTask(admin, res.task.id, ENDED);
  };

  beforeAll(async () => {
    admin = stack.admin;
    ({ id: tenantId, api: tenant } = await stack.tenant('provsched'));
    // The control plane reads provider-schedules from the agent's hello.
    await waitFor(async () => {
      const agents = (await admin.expect(200, 'GET', '/v1/agents')).items as {
        plugins: { capabilities: string[] }[];
      }[];
      return agents.some((a) => a.plugins.some((p) => p.capabilities.includes('provider-schedules')));
    }, 'the agent to declare provider-schedules');
    const connection = async (name: string, config: Record<string, unknown>) =>
      (
        await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
          name,
          plugin: '@cairn/plugin-dummy',
          tenantLocators: 'any',
          config: { ...fast, ...config },
        })
      ).id as string;
    const offering = async (name: string, providerId: string, grant = true) => {
      const row = await admin.expect(201, 'POST', '/v1/offerings', {
        name,
        zone: 'zone-a',
        providerId,
        externalId: `job-${name}`,
        allowAdhoc: true,
        allowUserSchedules: false,
        sla,
      });
      if (grant) await admin.expect(201, 'POST', `/v1/offerings/${row.id}/grants`, { tenantId });
      return row.id as string;
    };
    offerings.managed = await offering(
      'veeam-like',
      await connection('managed', { storeDir: dirs.managed, providerSchedules: true }),
    );
    offerings.cairn = await offering(
      'cairn-clock',
      await connection('cairn', { storeDir: dirs.cairn, providerSchedules: false }),
    );
    offerings.refusing = await offering(
      'refusing',
      await connection('refusing', { storeDir: dirs.refusing, providerSchedules: true, failSchedules: true }),
    );
    offerings.foreign = await offering('not-granted', await connection('foreign', {}), false);
    for (const name of ['p', 'q', 'c', 'r']) ins[name] = await instance(`vm-${name}`);
  });

  it('a provider that runs the schedule gets it on assignment, and Cairn fires no SLA backup for it', async () => {
    const managed = await assign(ins.p!, offerings.managed!);
    expect(managed).toMatchObject({ state: 'succeeded', output: { managed: true } });
    expect(scheduleFile(dirs.managed, ins.p!)).toMatchObject({
      instanceId: ins.p,
      sla,
      offeringExternalId: 'job-veeam-like',
    });
    expect(await admin.expect(200, 'GET', `/v1/instances/${ins.p}`)).toMatchObject({
      offeringId: offerings.managed,
      schedule: { owner: 'provider', state: 'configured', taskId: managed.id },
    });
    expect((await assign(ins.q!, offerings.managed!)).state).toBe('succeeded');
    // The same plugin may leave the clock to Cairn (here: this connection).
    const cairn = await assign(ins.c!, offerings.cairn!);
    expect(cairn).toMatchObject({ state: 'succeeded', output: { managed: false } });
    expect(scheduleFile(dirs.cairn, ins.c!)).toBeUndefined();
    expect((await admin.expect(200, 'GET', `/v1/instances/${ins.c}`)).schedule).toEqual({
      owner: 'cairn',
      state: 'configured',
      taskId: cairn.id,
    });
    // Assigning again changes nothing: 200, no second task.
    await tenant.expect(200, 'PUT', `/v1/instances/${ins.p}/offering`, { offeringId: offerings.managed });
    expect(await scheduleTasks(ins.p!, 'configure-schedule')).toHaveLength(1);

    for (const [n, day] of ['2026-03-28', '2026-03-29', '2026-03-30'].entries()) {
      await step(`${day}T03:00:00Z`);
      await waitFor(
        async () => (await backupTasks(admin, ins.c!)).filter((t) => t.state === 'succeeded').length === n + 1,
        `Cairn's backup ${n + 1} of the cairn-clock instance`,
      );
    }
    expect(await backupTasks(admin, ins.p!)).toEqual([]);
    expect(await backupTasks(admin, ins.q!)).toEqual([]);
    expect(await eventsOf(admin, 'offering.schedule_configured', ins.p!)).toHaveLength(1);
  });

  it('a provider that refuses the schedule rolls the assignment back, with its code and message', async () => {
    const refused = await assign(ins.r!, offerings.refusing!);
    expect(refused).toMatchObject({ state: 'failed', error: { code: 'SCHEDULE_REFUSED' } });
    const message = `dummy: the backup system refuses to configure the schedule of ${ins.r} (failSchedules is set)`;
    expect(refused.error!.message).toBe(message);
    expect(await admin.expect(200, 'GET', `/v1/instances/${ins.r}`)).toMatchObject({
      offeringId: null,
      schedule: { owner: null, state: 'failed', taskId: refused.id },
    });
    const [event] = await eventsOf(tenant, 'offering.assign_failed', ins.r!);
    expect(event).toMatchObject({
      taskId: refused.id,
      data: { offeringId: offerings.refusing, state: 'failed', code: 'SCHEDULE_REFUSED', message },
    });
    expect(event.message).toContain(message);
    await step('2026-03-31T03:00:00Z');
    expect(await backupTasks(admin, ins.r!)).toEqual([]);
    expect(scheduleFile(dirs.refusing, ins.r!)).toBeUndefined();
  });

  it('an SLA change reaches the provider of each instance it runs the schedule of', async () => {
    const newSla = { ...sla, cron: '0 4 * * *', keepLast: 5 };
    await admin.expect(200, 'PATCH', `/v1/offerings/${offerings.managed}`, { sla: newSla });
    for (const id of [ins.p!, ins.q!]) {
      const [latest] = await scheduleTasks(id, 'configure-schedule');
      expect((await waitForTask(admin, latest!.id, ENDED)).state).toBe('succeeded');
      expect(scheduleFile(dirs.managed, id)?.sla).toEqual(newSla);
      expect((await admin.expect(200, 'GET', `/v1/instances/${id}`)).schedule).toEqual({
        owner: 'provider',
        state: 'configured',
        taskId: latest!.id,
      });
    }
    // A change that leaves the SLA as it is asks no one.
    await admin.expect(200, 'PATCH', `/v1/offerings/${offerings.managed}`, { name: 'veeam-like-2' });
    expect(await scheduleTasks(ins.p!, 'configure-schedule')).toHaveLength(2);
  });

  it('refuses bad input on the changed routes and writes nothing', async () => {
    const before = await admin.expect(200, 'GET', `/v1/instances/${ins.r}`);
    const tasksBefore = (await scheduleTasks(ins.r!, 'configure-schedule')).length;
    for (const body of [
      { offeringId: offerings.foreign },
      { offeringId: 'off_doesnotexist' },
      { offeringId: offerings.managed, extra: true },
      {},
    ]) {
      await tenant.expect(400, 'PUT', `/v1/instances/${ins.r}/offering`, body);
    }
    await admin.expect(400, 'PATCH', `/v1/offerings/${offerings.managed}`, { sla: { ...sla, everyday: true } });
    await admin.expect(400, 'PATCH', `/v1/offerings/${offerings.managed}`, { sla: { ...sla, cron: 'often' } });
    await tenant.expect(400, 'DELETE', `/v1/instances/${ins.p}/offering?force=maybe`);
    expect(await admin.expect(200, 'GET', `/v1/instances/${ins.r}`)).toEqual(before);
    expect(await scheduleTasks(ins.r!, 'configure-schedule')).toHaveLength(tasksBefore);
    expect((await admin.expect(200, 'GET', `/v1/instances/${ins.p}`)).offeringId).toBe(offerings.managed);
    expect(await scheduleTasks(ins.p!, 'deconfigure-schedule')).toEqual([]);
    expect(scheduleFile(dirs.managed, ins.p!)?.sla.cron).toBe('0 4 * * *');
  });

  it('removing the offering clears it at once and removes the schedule from the provider', async () => {
    const res = await tenant.expect(202, 'DELETE', `/v1/instances/${ins.p}/offering`);
    expect(res.items).toHaveLength(1);
    expect(res.items[0]).toMatchObject({ kind: 'deconfigure-schedule', instanceId: ins.p });
    expect(await admin.expect(200, 'GET', `/v1/instances/${ins.p}`)).toMatchObject({
      offeringId: null,
      schedule: { owner: null, state: 'deconfiguring', taskId: res.items[0].id },
    });
    expect((await waitForTask(admin, res.items[0].id, ENDED)).state).toBe('succeeded');
    expect(scheduleFile(dirs.managed, ins.p!)).toBeUndefined();
    expect((await admin.expect(200, 'GET', `/v1/instances/${ins.p}`)).schedule).toBeNull();
    // An instance Cairn schedules has nothing to remove at the provider: 204 as before.
    await tenant.expect(204, 'DELETE', `/v1/instances/${ins.c}/offering`);
    expect(await scheduleTasks(ins.c!, 'deconfigure-schedule')).toEqual([]);
  });

  it('an SLA taken away is removed from the provider; the instance stays on the offering', async () => {
    await admin.expect(200, 'PATCH', `/v1/offerings/${offerings.managed}`, { sla: null });
    const [task] = await waitFor(async () => {
      const list = await scheduleTasks(ins.q!, 'deconfigure-schedule');
      return list.length === 1 ? list : undefined;
    }, 'the deconfigure task of q');
    expect((await waitForTask(admin, task!.id, ENDED)).state).toBe('succeeded');
    expect(scheduleFile(dirs.managed, ins.q!)).toBeUndefined();
    expect(await admin.expect(200, 'GET', `/v1/instances/${ins.q}`)).toMatchObject({
      offeringId: offerings.managed,
      schedule: null,
    });
  });
});
