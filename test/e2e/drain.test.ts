import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { runAgentCommand } from '@cairn/test-harness/processes';
import { protectInstance, waitForTask, type RunBody, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack, type StackAgent as Agent } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];

describe.each(backends)('a drain set by an operator on the agent host (%s)', (backend) => {
  const stack = withStack(backend, {
    agents: [
      { name: 'a1', zone: 'zone-1' },
      { name: 'b1', zone: 'zone-2' },
      { name: 'b2', zone: 'zone-2' },
    ],
  });
  let api: Api;
  const agents: Record<string, Agent> = {};
  interface EventBody {
    type: string;
    agentId: string | null;
    message: string;
    data: Record<string, unknown> | null;
  }
  let jobs = 0;

  const maintenanceOf = (a: Agent) =>
    api.expect<{ enabled: boolean; message: string; source: string }>(
      200,
      'GET',
      `/v1/agents/${a.agentId}/maintenance`,
    );
  /** `cairn-agent drain --message` on the host's state dir; `null`: `cairn-agent undrain`. */
  const drain = async (a: Agent, message: string | null) => {
    const args = message === null ? ['undrain'] : ['drain', '--message', message];
    const run = await runAgentCommand([...args, '--state-dir', a.stateDir]);
    expect(run.exitCode).toBe(0);
  };
  const shown = (a: Agent, enabled: boolean) =>
    waitFor(async () => {
      const m = await maintenanceOf(a);
      return m.enabled === enabled ? m : undefined;
    }, `agent ${a.agentId} maintenance enabled=${enabled}`);
  const restart = async (a: Agent, between: () => Promise<void>) => {
    await a.proc.stop();
    await between();
    a.proc = await stack.runAgent(a.stateDir);
  };
  /** The ad-hoc backup is refused as maintenance refuses it: 503, and a failed task saying why. */
  const refused = async (instanceId: string, messages: string[]) => {
    const r = await api.post(`/v1/instances/${instanceId}/backups`);
    expect(r.status, JSON.stringify(r.body)).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(r.body).toMatchObject({ code: 'maintenance', status: 503 });
    expect(messages).toContain(r.body.detail);
    const task = await api.expect<TaskBody>(200, 'GET', `/v1/tasks/${r.body.taskId}`);
    expect(task).toMatchObject({ state: 'failed', error: { code: 'maintenance', message: r.body.detail } });
  };
  const backupOn = async (instanceId: string) => {
    const task = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${instanceId}/backups`);
    const done = await waitForTask(api, task.id, TERMINAL);
    expect(done.state).toBe('succeeded');
    return (await api.expect<{ agentId: string }>(200, 'GET', `/v1/tasks/${task.id}`)).agentId;
  };
  const job = async (instanceIds: string[]) =>
    (
      await api.expect<{ id: string }>(201, 'POST', '/v1/backup-jobs', {
        name: `job-${++jobs}`,
        instanceIds,
        mode: 'FULL',
        execution: 'PARALLEL',
      })
    ).id;
  const lastRun = async (jobId: string) =>
    ((await api.expect(200, 'GET', `/v1/backup-jobs/${jobId}/runs`)).items as RunBody[])[0]!;

  beforeAll(async () => {
    api = stack.admin;
    for (const [i, name] of ['a1', 'b1', 'b2'].entries()) agents[name] = stack.agents[i]!;
  }, 60_000);

  it('a zone whose only agent is drained refuses backups with the drain’s message (also while it is offline); restores go on; undrain takes backups again', async () => {
    const a1 = agents.a1!;
    const p = await protectInstance(api, 'zone-1', { config: { durationMs: 200, steps: 2 } });
    await backupOn(p.instanceId);
    const [point] = (await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items;
    const jobId = await job([p.instanceId]);

    // As an operator would: stop the agent, drain it on its host, start it again.
    await restart(a1, () => drain(a1, 'host patching'));
    expect(await shown(a1, true)).toMatchObject({ enabled: true, source: 'agent', message: 'host patching' });

    await refused(p.instanceId, ['host patching']);
    // A job's member ends as maintenance ends one: ERROR with code maintenance and the message.
    const blocked = await api.post(`/v1/backup-jobs/${jobId}/run`);
    expect(blocked.status).toBe(503);
    expect(blocked.body).toMatchObject({ code: 'maintenance', detail: 'host patching' });
    const run = await lastRun(jobId);
    expect(run.id).toBe(blocked.body.runId);
    expect(run.members).toMatchObject([
      { instanceId: p.instanceId, set: 'ERROR', error: { code: 'maintenance', message: 'host patching' } },
    ]);
    // Only backups stop: a restore runs on the drained agent.
    const restore = await api.expect<TaskBody>(202, 'POST', `/v1/backups/${point.id}/restore`);
    expect((await waitForTask(api, restore.id, TERMINAL)).state).toBe('succeeded');

    // The drain was told once, as a host's: a restart that finds it still on tells nothing more.
    const hostEvents = async (type: string) =>
      ((await api.expect(200, 'GET', '/v1/events?limit=500')).items as EventBody[]).filter(
        (e) => e.type === type && e.agentId === a1.agentId,
      );
    await restart(a1, async () => {});
    await waitFor(
      async () => (await api.expect(200, 'GET', `/v1/agents/${a1.agentId}`)).state === 'connected',
      'a1 to be back',
    );
    const drained = await hostEvents('maintenance.host_drained');
    expect(drained).toHaveLength(1);
    expect(drained[0]).toMatchObject({
      message: `agent ${a1.agentId} drained on its host: host patching`,
      data: { scope: 'agent', agentId: a1.agentId, source: 'agent', message: 'host patching' },
    });
    expect(await hostEvents('maintenance.host_undrained')).toHaveLength(0);

    // Offline, it is still drained: its host keeps the drain until undrain.
    await a1.proc.stop();
    await waitFor(
      async () => (await api.expect(200, 'GET', `/v1/agents/${a1.agentId}`)).state === 'disconnected',
      'a1 to be seen disconnected',
    );
    await refused(p.instanceId, ['host patching']);

    await restart(a1, () => drain(a1, null));
    await shown(a1, false);
    expect(await hostEvents('maintenance.host_undrained')).toMatchObject([
      { message: `agent ${a1.agentId} undrained on its host`, data: { source: 'agent', message: null } },
    ]);
    expect(await hostEvents('maintenance.host_drained')).toHaveLength(1);
    await backupOn(p.instanceId);
    await api.expect(202, 'POST', `/v1/backup-jobs/${jobId}/run`);
    expect(
      (
        await waitFor(async () => {
          const r = await lastRun(jobId);
          return r.endedAt ? r : undefined;
        }, 'the job run to end')
      ).state,
    ).toBe('succeeded');
  }, 120_000);

  it('a backup queued before the drain arrived fails when it arrives, as a zone window fails queued backups', async () => {
    const a1 = agents.a1!;
    const p = await protectInstance(api, 'zone-1', { config: { durationMs: 200, steps: 2 } });
    const other = await protectInstance(api, 'zone-1', { config: { durationMs: 200, steps: 2 } });
    const jobId = await job([other.instanceId]);

    await a1.proc.stop();
    // No agent is connected: the backup and the job's member wait in the queue.
    const queued = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
    await api.expect(202, 'POST', `/v1/backup-jobs/${jobId}/run`);
    expect((await lastRun(jobId)).members[0]).toMatchObject({ set: 'ONGOING' });
    expect((await api.expect<TaskBody>(200, 'GET', `/v1/tasks/${queued.id}`)).state).toBe('queued');

    await drain(a1, 'disk swap');
    a1.proc = await stack.runAgent(a1.stateDir);
    expect(await waitForTask(api, queued.id, TERMINAL)).toMatchObject({
      state: 'failed',
      error: { code: 'maintenance', message: 'disk swap' },
    });
    const run = await waitFor(async () => {
      const r = await lastRun(jobId);
      return r.endedAt ? r : undefined;
    }, 'the job run to end');
    expect(run.state).toBe('failed');
    expect(run.members[0]).toMatchObject({ set: 'ERROR', error: { code: 'maintenance', message: 'disk swap' } });

    await drain(a1, null);
    await shown(a1, false);
    await backupOn(p.instanceId);
  }, 120_000);

  it('a zone with one drained agent and one live one takes backups on the live one; with both drained it refuses them', async () => {
    const [b1, b2] = [agents.b1!, agents.b2!];
    const p = await protectInstance(api, 'zone-2', { config: { durationMs: 200, steps: 2 } });

    // Drained while running: the agent tells the control plane on its session.
    await drain(b1, 'b1 reboot');
    await shown(b1, true);
    for (let i = 0; i < 3; i++) expect(await backupOn(p.instanceId)).toBe(b2.agentId);

    await drain(b2, 'b2 reboot');
    await shown(b2, true);
    await refused(p.instanceId, ['b1 reboot', 'b2 reboot']);

    await drain(b1, null);
    await shown(b1, false);
    expect(await backupOn(p.instanceId)).toBe(b1.agentId);
    await drain(b2, null);
    await shown(b2, false);
  }, 120_000);
});
