import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { runAgentCommand, type ControlPlaneProc, type Proc } from '@cairn/test-harness/processes';
import { waitForTask, type RunBody, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack, type StackAgent } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];
const DRAIN_SET = 'maintenance drain set by the control plane; new backups are refused';
const DRAIN_LIFTED = 'maintenance drain lifted by the control plane';

/** How many times an agent logged `msg` so far. */
const logged = (proc: Proc, msg: string) => proc.logs().filter((l) => l['msg'] === msg).length;
/** Waits for the agent to log `msg` once more than `before` times. */
const loggedAgain = (proc: Proc, msg: string, before: number) =>
  waitFor(() => logged(proc, msg) > before || undefined, `the agent to log "${msg}" again`);

interface MaintenanceBody {
  scope: string;
  zone?: string;
  agentId?: string;
  enabled: boolean;
  message: string;
  runningBackups: number;
  ready: boolean;
  setBy: { tokenId: string; role: string } | null;
  setAt: string | null;
  source: string;
}
interface JobBody {
  id: string;
  sets: { outdated: string[]; ongoing: string[]; updated: string[]; error: string[] };
  lastRun: { id: string; state: string } | null;
}

describe.each(backends)('maintenance windows (%s)', (backend) => {
  const stack = withStack(backend, {
    agents: [
      { name: 'a1', zone: 'zone-a', slots: 2 },
      { name: 'a2', zone: 'zone-a', slots: 2 },
      { name: 'b1', zone: 'zone-b', slots: 2 },
    ],
  });
  let cp: ControlPlaneProc;
  let admin: Api;
  let tenant: Api;
  let tenantId: string;
  const agents: Record<string, StackAgent> = {};
  let n = 0;
  const offerings: Record<string, string> = {};

  const instance = async (zone: string, agentId?: string) => {
    const row = await admin.expect(201, 'POST', '/v1/instances', {
      name: `vm-${++n}`,
      zone,
      locator: { vm: `vm-${n}` },
      tenantId,
      ...(agentId ? { agentId } : {}),
    });
    await admin.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId: offerings[zone] });
    return row.id as string;
  };
  const offering = async (zone: string, config: Record<string, unknown>) => {
    const provider = await admin.expect(201, 'POST', `/v1/zones/${zone}/providers`, {
      name: `dummy-${zone}`,
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config,
    });
    const row = await admin.expect(201, 'POST', '/v1/offerings', {
      name: `gold-${zone}`,
      zone,
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: true,
    });
    await admin.expect(201, 'POST', `/v1/offerings/${row.id}/grants`, { tenantId });
    return row.id as string;
  };
  const backupOk = async (api: Api, instanceId: string) => {
    const task = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${instanceId}/backups`);
    return waitForTask(api, task.id, TERMINAL);
  };
  const refused = async (api: Api, instanceId: string, message: string) => {
    const r = await api.post(`/v1/instances/${instanceId}/backups`);
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(r.body).toMatchObject({ code: 'maintenance', detail: message, status: 503 });
    const task = await api.expect<TaskBody & { kind: string }>(200, 'GET', `/v1/tasks/${r.body.taskId}`);
    expect(task).toMatchObject({ state: 'failed', kind: 'backup', error: { code: 'maintenance', message } });
    return task;
  };
  const events = async (api: Api, type: string) => {
    const out: any[] = [];
    let after = 0;
    for (;;) {
      const page = (await api.expect(200, 'GET', `/v1/events?after=${after}&limit=500`)).items as any[];
      if (page.length === 0) return out.filter((e) => e.type === type);
      out.push(...page);
      after = page[page.length - 1].id;
    }
  };
  const put = (path: string, body: unknown) => admin.expect<MaintenanceBody>(200, 'PUT', path, body);
  const backupTasks = async () =>
    (await admin.expect(200, 'GET', '/v1/tasks?kind=backup&limit=500')).items as (TaskBody & {
      instanceId: string;
      agentId: string | null;
      startedAt: string | null;
      dispatchedAt: string | null;
    })[];

  beforeAll(async () => {
    cp = stack.cp;
    admin = stack.admin;
    ({ id: tenantId, api: tenant } = await stack.tenant('maint-tenant'));
    for (const [i, name] of ['a1', 'a2', 'b1'].entries()) agents[name] = stack.agents[i]!;
    // Each backup takes over a second: a job's third member is caught running.
    offerings['zone-a'] = await offering('zone-a', { durationMs: 2500, steps: 3, sizeBytes: 1000 });
    offerings['zone-b'] = await offering('zone-b', { durationMs: 100, steps: 1, sizeBytes: 1000 });
  }, 60_000);

  it('refuses bad bodies and queries with 400 naming the field, a tenant’s PUT with 403, and changes nothing', async () => {
    const before = await admin.expect<MaintenanceBody>(200, 'GET', '/v1/maintenance');
    expect(before).toMatchObject({ scope: 'global', enabled: false, ready: false, setAt: null, setBy: null });
    const bad: [unknown, string][] = [
      [{ enabled: true, message: 'x'.repeat(1001) }, 'message'],
      [{ enabled: true, message: '   ' }, 'message'],
      [{ enabled: true, message: 42 }, 'message'],
      [{ enabled: 'yes' }, 'enabled'],
      [{}, 'enabled'],
      [{ enabled: true, reason: 'x' }, '(body)'],
    ];
    for (const [body, path] of bad) {
      for (const where of [
        '/v1/maintenance',
        '/v1/zones/zone-a/maintenance',
        `/v1/agents/${agents.a1!.agentId}/maintenance`,
      ]) {
        const r = await admin.put(where, body);
        expect(r.status, `${where} ${JSON.stringify(body)}`).toBe(400);
        expect(r.body.code).toBe('invalid_input');
        expect(r.body.errors.map((e: { path: string }) => e.path).join(' ')).toContain(path);
      }
    }
    for (const q of [
      'wait=soon',
      'wait=ready&timeoutS=0',
      'wait=ready&timeoutS=301',
      'wait=ready&timeoutS=1.5',
      'wait=ready&timeoutS=abc',
      'timeoutS=5',
      'later=1',
    ]) {
      const r = await admin.get(`/v1/maintenance?${q}`);
      expect(r.status, q).toBe(400);
    }
    const forbidden = await tenant.put('/v1/maintenance', { enabled: true });
    expect(forbidden.status).toBe(403);
    expect((await tenant.put('/v1/zones/zone-a/maintenance', { enabled: true, bogus: 1 })).status).toBe(403);
    expect((await tenant.get(`/v1/agents/${agents.a1!.agentId}/maintenance`)).status).toBe(403);
    expect((await admin.get('/v1/agents/agt_00000000000000000000000000/maintenance')).status).toBe(404);
    expect((await admin.put('/v1/agents/agt_00000000000000000000000000/maintenance', { enabled: true })).status).toBe(
      404,
    );
    // Nothing changed: still off everywhere, never set.
    expect(await tenant.expect(200, 'GET', '/v1/maintenance')).toEqual(before);
    expect(await admin.expect(200, 'GET', '/v1/zones/zone-a/maintenance')).toMatchObject({
      enabled: false,
      setAt: null,
    });
    expect(await events(admin, 'maintenance.enabled')).toHaveLength(0);
  });

  it('global: the running backup of a SEQUENTIAL job completes, the rest go to ERROR, restores run, ready fires once, retry backs up the rest', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await instance('zone-a'));
    const other = await instance('zone-a');
    const job = await tenant.expect<JobBody>(201, 'POST', '/v1/backup-jobs', {
      name: 'ten',
      instanceIds: ids,
      mode: 'FULL',
      execution: 'SEQUENTIAL',
    });
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${job.id}/run`);
    // The third member's backup is running.
    const third = await waitFor(
      async () => {
        const t = (await backupTasks()).find((x) => x.instanceId === ids[2]);
        return t?.state === 'running' ? t : undefined;
      },
      'the third instance’s backup to run',
      60_000,
    );
    const message = 'Storage firmware upgrade until 06:00 UTC.';
    const on = await put('/v1/maintenance', { enabled: true, message });
    expect(on).toMatchObject({
      scope: 'global',
      enabled: true,
      message,
      runningBackups: 1,
      ready: false,
      source: 'api',
    });
    expect(on.setBy).toMatchObject({ role: 'sp-admin' });
    const waiting = tenant.get<MaintenanceBody>('/v1/maintenance?wait=ready&timeoutS=60');

    // In the same transaction as the PUT: instances 4-10 are in ERROR with the message.
    const during = await tenant.expect<JobBody>(200, 'GET', `/v1/backup-jobs/${job.id}`);
    expect(during.sets.error).toEqual(ids.slice(3));
    expect(during.sets.ongoing).toEqual([ids[2]]);
    const [run] = (await tenant.expect(200, 'GET', `/v1/backup-jobs/${job.id}/runs`)).items as RunBody[];
    for (const m of run!.members.slice(3)) expect(m.error).toEqual({ code: 'maintenance', message });
    const jobEvents = (await events(tenant, 'job.maintenance')).filter((e) => e.jobId === job.id);
    expect(jobEvents).toHaveLength(1);
    expect(jobEvents[0].data).toMatchObject({ code: 'maintenance', message, instanceIds: ids.slice(3) });

    // New work fails at once; the tenant sees why in the answer, the task and its events.
    const adhoc = await refused(tenant, other, message);
    expect(
      (await events(tenant, 'task.failed')).some((e) => e.taskId === adhoc.id && e.message.includes(message)),
    ).toBe(true);
    const runAgain = await tenant.post(`/v1/backup-jobs/${job.id}/run`);
    expect(runAgain.status).toBe(409); // the run still goes (its third member)
    // A restore runs while the window holds.
    const [point] = (await tenant.expect(200, 'GET', `/v1/backups?instanceId=${ids[0]}`)).items;
    const restore = await tenant.expect<TaskBody>(202, 'POST', `/v1/backups/${point.id}/restore`);
    expect((await waitForTask(tenant, restore.id, TERMINAL)).state).toBe('succeeded');

    // Ready exactly when the third backup ended.
    const ready = await waiting;
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ enabled: true, ready: true, runningBackups: 0 });
    expect((await admin.expect<TaskBody>(200, 'GET', `/v1/tasks/${third.id}`)).state).toBe('succeeded');
    const after = await tenant.expect<JobBody>(200, 'GET', `/v1/backup-jobs/${job.id}`);
    expect(after.sets.updated).toEqual(ids.slice(0, 3));
    expect(after.sets.error).toEqual(ids.slice(3));
    expect(after.lastRun?.state).toBe('failed');
    // A job run now: every member in ERROR at once, 503 maintenance naming the run.
    const blocked = await tenant.post(`/v1/backup-jobs/${job.id}/run`);
    expect(blocked.status).toBe(503);
    expect(blocked.body).toMatchObject({ code: 'maintenance', detail: message });
    const [blockedRun] = (await tenant.expect(200, 'GET', `/v1/backup-jobs/${job.id}/runs`)).items as RunBody[];
    expect(blockedRun!.id).toBe(blocked.body.runId);
    expect(blockedRun!.members.every((m) => m.set === 'ERROR' && m.error?.code === 'maintenance')).toBe(true);

    // Ready once per window: every tenant reads it (the global scope touches all), and the
    // sp-admin, who reads every tenant's events, reads it once.
    expect(await events(admin, 'maintenance.ready')).toHaveLength(1);
    const readyEvents = await events(tenant, 'maintenance.ready');
    expect(readyEvents).toHaveLength(1);
    expect(readyEvents[0].tenantId).toBe(tenantId);
    expect(readyEvents[0].data).toMatchObject({ scope: 'global', message });
    // No backup started during the window: only the first three of the job ever ran.
    const started = (await backupTasks()).filter((t) => t.startedAt !== null);
    expect(started.map((t) => t.instanceId).sort()).toEqual(ids.slice(0, 3).sort());

    const off = await put('/v1/maintenance', { enabled: false });
    expect(off).toMatchObject({ enabled: false, ready: false });
    expect((await events(tenant, 'maintenance.disabled')).length).toBeGreaterThan(0);
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${job.id}/retry`);
    const done = await waitFor(
      async () => {
        const j = await tenant.expect<JobBody>(200, 'GET', `/v1/backup-jobs/${job.id}`);
        return j.lastRun?.state === 'succeeded' ? j : undefined;
      },
      'the retry to back up instances 4-10',
      90_000,
    );
    expect(done.sets.updated).toEqual(ids);
    expect((await backupOk(tenant, other)).state).toBe('succeeded');
  }, 180_000);

  it('zone and agent scopes touch only their zone or agent, and the agent is told', async () => {
    const a1 = agents.a1!.agentId;
    const inB = await instance('zone-b');
    const inA = await instance('zone-a');
    const onA1 = await instance('zone-a', a1);
    const onA2 = await instance('zone-a', agents.a2!.agentId);

    const toldA1 = () => logged(agents.a1!.proc, DRAIN_SET);
    const toldBefore = toldA1();
    const toldB1 = logged(agents.b1!.proc, DRAIN_SET);
    const zoneMessage = 'zone-b network work';
    expect(await put('/v1/zones/zone-b/maintenance', { enabled: true, message: zoneMessage })).toMatchObject({
      scope: 'zone',
      zone: 'zone-b',
      enabled: true,
      ready: true,
    });
    await loggedAgain(agents.b1!.proc, DRAIN_SET, toldB1);
    await refused(tenant, inB, zoneMessage);
    expect((await backupOk(tenant, inA)).state).toBe('succeeded');
    // A tenant may look at a zone it has instances in, not at others.
    expect(await tenant.expect(200, 'GET', '/v1/zones/zone-b/maintenance')).toMatchObject({
      enabled: true,
      message: zoneMessage,
    });
    expect((await tenant.get('/v1/zones/zone-c/maintenance')).status).toBe(404);
    expect(toldA1()).toBe(toldBefore);

    const agentMessage = 'agent a1 disk swap';
    const liftedA1 = logged(agents.a1!.proc, DRAIN_LIFTED);
    const on = await put(`/v1/agents/${a1}/maintenance`, { enabled: true, message: agentMessage });
    expect(on).toMatchObject({ scope: 'agent', agentId: a1, enabled: true, source: 'api' });
    await loggedAgain(agents.a1!.proc, DRAIN_SET, toldBefore);
    await refused(tenant, onA1, agentMessage);
    expect((await backupOk(tenant, onA2)).state).toBe('succeeded');
    // Unpinned backups in the zone are placed on the other agent.
    for (let i = 0; i < 3; i++) expect((await backupOk(tenant, inA)).state).toBe('succeeded');
    const unpinned = (await backupTasks()).filter((t) => t.instanceId === inA && t.state === 'succeeded');
    expect(unpinned.slice(0, 3).every((t) => t.agentId === agents.a2!.agentId)).toBe(true);
    const view = await admin.expect(200, 'GET', `/v1/agents/${a1}`);
    expect(view.maintenance).toEqual({ enabled: true, message: agentMessage, source: 'api' });

    await put(`/v1/agents/${a1}/maintenance`, { enabled: false });
    await put('/v1/zones/zone-b/maintenance', { enabled: false });
    await loggedAgain(agents.a1!.proc, DRAIN_LIFTED, liftedA1);
    expect((await backupOk(tenant, onA1)).state).toBe('succeeded');
    expect((await backupOk(tenant, inB)).state).toBe('succeeded');
  }, 120_000);

  it('a zone whose only agent is in an API window refuses unpinned backups; leaving it resumes queued work without a restart', async () => {
    const b1 = agents.b1!.agentId;
    const inB = await instance('zone-b');
    expect((await backupOk(tenant, inB)).state).toBe('succeeded');
    const [point] = (await tenant.expect(200, 'GET', `/v1/backups?instanceId=${inB}`)).items;
    await put(`/v1/agents/${b1}/maintenance`, { enabled: true, message: 'b1 reboot' });
    // No agent of the zone can take it: refused as a zone window would (it used to wait queued).
    await refused(tenant, inB, 'b1 reboot');
    expect(await tenant.expect(200, 'GET', '/v1/zones/zone-b/maintenance')).toMatchObject({ enabled: false });
    // A delete waits in the queue: an agent in maintenance is given none.
    const del = await tenant.expect<TaskBody>(202, 'DELETE', `/v1/backups/${point.id}`);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await tenant.expect<TaskBody>(200, 'GET', `/v1/tasks/${del.id}`)).state).toBe('queued');
    await put(`/v1/agents/${b1}/maintenance`, { enabled: false });
    expect((await waitForTask(tenant, del.id, TERMINAL)).state).toBe('succeeded');
    expect((await backupOk(tenant, inB)).state).toBe('succeeded');
  }, 60_000);

  it('every agent of a zone in an API window: ad-hoc backups 503 and job members ERROR with the first agent’s message; one window ended, backups are taken', async () => {
    const [a1, a2] = [agents.a1!.agentId, agents.a2!.agentId];
    const inA = await instance('zone-a');
    const member = await instance('zone-a');
    const job = await tenant.expect<JobBody>(201, 'POST', '/v1/backup-jobs', {
      name: 'zone-a in windows',
      instanceIds: [member],
      mode: 'FULL',
      execution: 'SEQUENTIAL',
    });
    const messages = { [a1]: 'a1 rack move', [a2]: 'a2 rack move' };
    await put(`/v1/agents/${a1}/maintenance`, { enabled: true, message: messages[a1] });
    // One agent in a window, the other free: the zone takes the backup, on the free one.
    const placed = await backupOk(tenant, inA);
    expect(placed.state).toBe('succeeded');
    expect((await admin.expect<{ agentId: string }>(200, 'GET', `/v1/tasks/${placed.id}`)).agentId).toBe(a2);

    await put(`/v1/agents/${a2}/maintenance`, { enabled: true, message: messages[a2] });
    // Both messages compete: the first agent's by id wins.
    const message = messages[[a1, a2].sort()[0]!]!;
    await refused(tenant, inA, message);
    const blocked = await tenant.post(`/v1/backup-jobs/${job.id}/run`);
    expect(blocked.status).toBe(503);
    expect(blocked.body).toMatchObject({ code: 'maintenance', detail: message });
    const [run] = (await tenant.expect(200, 'GET', `/v1/backup-jobs/${job.id}/runs`)).items as RunBody[];
    expect(run!.id).toBe(blocked.body.runId);
    expect(run!.members).toEqual([
      expect.objectContaining({ instanceId: member, set: 'ERROR', error: { code: 'maintenance', message } }),
    ]);

    await put(`/v1/agents/${a1}/maintenance`, { enabled: false });
    const taken = await backupOk(tenant, inA);
    expect(taken.state).toBe('succeeded');
    expect((await admin.expect<{ agentId: string }>(200, 'GET', `/v1/tasks/${taken.id}`)).agentId).toBe(a1);
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${job.id}/retry`);
    await waitFor(async () => {
      const j = await tenant.expect<JobBody>(200, 'GET', `/v1/backup-jobs/${job.id}`);
      return j.lastRun?.state === 'succeeded' ? j : undefined;
    }, 'the retry to back up the member');
    await put(`/v1/agents/${a2}/maintenance`, { enabled: false });
  }, 120_000);

  it('a drain set on the host while the control plane is down holds after both restart, with source agent', async () => {
    const a2 = agents.a2!;
    const pinned = await instance('zone-a', a2.agentId);
    expect((await backupOk(tenant, pinned)).state).toBe('succeeded');
    const [point] = (await tenant.expect(200, 'GET', `/v1/backups?instanceId=${pinned}`)).items;

    const port = cp.port;
    await cp.proc.stop();
    const drain = await runAgentCommand(['drain', '--state-dir', a2.stateDir, '--message', 'host kernel patch']);
    expect(drain.exitCode).toBe(0);
    await a2.proc.stop();
    a2.proc = await stack.runAgent(a2.stateDir, { slots: 2, waitConnected: false });
    cp = await stack.controlPlane({ port });
    await a2.proc.waitForLog((l) => l['msg'] === 'agent connected', 'a2 to reconnect');

    const shown = await waitFor(async () => {
      const m = await admin.expect<MaintenanceBody>(200, 'GET', `/v1/agents/${a2.agentId}/maintenance`);
      return m.enabled ? m : undefined;
    }, 'the local drain to show');
    expect(shown).toMatchObject({ enabled: true, source: 'agent', message: 'host kernel patch', scope: 'agent' });
    expect((await admin.expect(200, 'GET', `/v1/agents/${a2.agentId}`)).maintenance).toEqual({
      enabled: true,
      message: 'host kernel patch',
      source: 'agent',
    });
    await refused(tenant, pinned, 'host kernel patch');
    const restore = await tenant.expect<TaskBody>(202, 'POST', `/v1/backups/${point.id}/restore`);
    expect((await waitForTask(tenant, restore.id, TERMINAL)).state).toBe('succeeded');
    // Turning the API part off leaves the host's drain.
    expect(await put(`/v1/agents/${a2.agentId}/maintenance`, { enabled: false })).toMatchObject({
      enabled: true,
      source: 'agent',
    });
    expect((await runAgentCommand(['undrain', '--state-dir', a2.stateDir])).exitCode).toBe(0);
    await waitFor(async () => {
      const m = await admin.expect<MaintenanceBody>(200, 'GET', `/v1/agents/${a2.agentId}/maintenance`);
      return m.enabled ? undefined : m;
    }, 'the local drain to lift');
    expect((await backupOk(tenant, pinned)).state).toBe('succeeded');
  }, 120_000);
});
