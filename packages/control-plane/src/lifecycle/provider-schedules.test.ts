import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import type { AgentHelloInfo } from '../store/agent-repository.js';
import type { OfferingRow } from '../store/schema.js';
import { PLUGIN, storeFixture } from '../testing/store-fixture.js';

const hello: AgentHelloInfo = {
  zone: 'z',
  slots: 4,
  plugins: [
    {
      name: PLUGIN,
      version: '1',
      apiVersion: 1,
      capabilities: ['backup', 'configure-schedule', 'deconfigure-schedule', 'provider-schedules'],
    },
  ],
  agentVersion: '1',
  hostname: 'h',
  draining: false,
  drainMessage: '',
  shuttingDown: false,
};

// The ways a task ends besides an agent's result: each settles the instance in its own transaction.
describe.each(backends)('provider schedules (%s)', (backend) => {
  const f = storeFixture(backend);
  const { catalog, tasks, queue, reports, events, providerSchedules: schedules } = f.repos;
  let agentId: string;
  let offering: OfferingRow;

  beforeAll(async () => {
    agentId = await f.agent('a1', 'h1');
    await f.repos.agents.markConnected(agentId, 's1', hello);
    const provider = await f.provider({ credentials: {} });
    offering = await f.offering({
      providerId: provider.id,
      externalId: 'job-1',
      sla: { cron: '0 2 * * *', keepLast: 1 },
    });
  });

  const assigned = async () => {
    const row = await f.instance({ locator: { vm: 1 } });
    const { task } = await schedules.assign(row, offering, Date.now());
    expect(task).toMatchObject({ kind: 'configure-schedule', state: 'queued', priority: 50 });
    expect(JSON.parse(task!.params)).toEqual({
      instanceId: row.id,
      instanceName: 'vm',
      locator: { vm: 1 },
      offeringExternalId: 'job-1',
      sla: { cron: '0 2 * * *', timezone: 'UTC', keepLast: 1 },
    });
    return { id: row.id, task: task! };
  };
  const claimed = async (taskId: string) => {
    const task = (await tasks.get(taskId))!;
    const attempt = await queue.claim(task, agentId, Date.now() + 60_000);
    return { ...task, attempt: attempt!, agentId, state: 'dispatched' };
  };
  const assignFailed = async (instanceId: string) =>
    (await events.list(0, 1000)).rows.filter((e) => e.type === 'offering.assign_failed' && e.instanceId === instanceId);
  const rolledBack = async (instanceId: string, taskId: string, code: string) => {
    expect(await catalog.getInstance(instanceId)).toMatchObject({
      offeringId: null,
      scheduleOwner: null,
      scheduleState: 'failed',
      scheduleTaskId: taskId,
    });
    const [event] = await assignFailed(instanceId);
    expect(JSON.parse(event!.data!)).toMatchObject({ offeringId: offering.id, code });
  };

  it('a cancel before dispatch rolls the assignment back', async () => {
    const { id, task } = await assigned();
    await tasks.requestCancel(task.id);
    await rolledBack(id, task.id, 'CANCELLED');
  });

  it('a lost configure task rolls the assignment back', async () => {
    const { id, task } = await assigned();
    const held = await claimed(task.id);
    await f.store.db.updateTable('tasks').set({ leaseExpiresAt: 1 }).where('id', '=', held.id).execute();
    expect((await queue.expireLeases(Date.now())).map((t) => t.id)).toContain(task.id);
    await rolledBack(id, task.id, 'AGENT_LOST');
  });

  it('an assignment the dispatcher cannot deliver rolls the assignment back', async () => {
    const { id, task } = await assigned();
    const held = await claimed(task.id);
    expect(await queue.failAssignment(held, 'ASSIGNMENT_UNDELIVERED', 'never accepted')).toBe(true);
    await rolledBack(id, task.id, 'ASSIGNMENT_UNDELIVERED');
  });

  it('a late end of a superseded configure changes nothing', async () => {
    const { id, task } = await assigned();
    const changed = { ...offering, sla: JSON.stringify({ cron: '0 5 * * *', keepLast: 2 }) };
    await f.store.db.updateTable('offerings').set({ sla: changed.sla }).where('id', '=', offering.id).execute();
    const queued = await schedules.slaChanged(offering, changed);
    const mine = queued.find((t) => t.instanceId === id)!;
    expect(JSON.parse(mine.params).sla).toEqual({ cron: '0 5 * * *', timezone: 'UTC', keepLast: 2 });
    await tasks.requestCancel(task.id);
    expect(await assignFailed(id)).toEqual([]);
    // Still an assignment waiting for the provider, now for the new SLA.
    expect(await catalog.getInstance(id)).toMatchObject({
      offeringId: offering.id,
      scheduleState: 'configuring',
      scheduleTaskId: mine.id,
    });
    await f.store.db.updateTable('offerings').set({ sla: offering.sla }).where('id', '=', offering.id).execute();
    await tasks.requestCancel(mine.id);
  });

  it('a failed removal says the provider may still run the schedule', async () => {
    const { id, task } = await assigned();
    const held = await claimed(task.id);
    const at = Date.now();
    await reports.apply(agentId, [
      {
        kind: 'result',
        seq: 1,
        taskId: task.id,
        attempt: held.attempt,
        at,
        outcome: { ok: true, backup: null, output: '{"managed":true}' },
      },
    ]);
    expect(await catalog.getInstance(id)).toMatchObject({ scheduleOwner: 'provider', scheduleState: 'configured' });
    const deconfigure = (await schedules.remove((await catalog.getInstance(id))!))!;
    expect(deconfigure).toMatchObject({ kind: 'deconfigure-schedule', instanceId: id });
    const held2 = await claimed(deconfigure.id);
    await reports.apply(agentId, [
      {
        kind: 'result',
        seq: 2,
        taskId: deconfigure.id,
        attempt: held2.attempt,
        at,
        outcome: { ok: false, code: 'SCHEDULE_REFUSED', message: 'no', retryable: false },
      },
    ]);
    expect(await catalog.getInstance(id)).toMatchObject({
      offeringId: null,
      scheduleOwner: null,
      scheduleState: 'failed',
      scheduleTaskId: deconfigure.id,
    });
    const failed = (await events.list(0, 1000)).rows.filter((e) => e.type === 'offering.deconfigure_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.message).toMatch(/SCHEDULE_REFUSED: no\): the provider may still run its schedule/);
  });
});
