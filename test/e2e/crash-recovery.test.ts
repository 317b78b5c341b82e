import { describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { stackPerTest, type Stack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];

describe.each(backends)('crash recovery with real process kills (%s)', (backend) => {
  const newStack = stackPerTest(backend);

  async function setup(env: Record<string, string> = {}): Promise<{ stack: Stack; api: Api }> {
    const stack = await newStack({ env });
    return { stack, api: stack.admin };
  }

  it('finishes a task whose control plane was killed -9 mid-task: the agent reconnects and its result reaches the new process', async () => {
    const { stack, api } = await setup();
    const { cp } = stack;
    const { stateDir } = await stack.enroll('zone-a', 'host-1');
    const agent = await stack.runAgent(stateDir);
    const steps = 12;
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 6000, steps, sizeBytes: 1200 } });
    const task = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    await waitFor(
      async () => (await api.get(`/v1/tasks/${task.id}`)).body.progress.percent > 0,
      'first progress report',
    );

    await cp.proc.kill9();
    // The agent goes on with the backup while the control plane is gone, spooling its reports.
    await agent.waitForLog(
      (l) => l['msg'] === 'control plane connection closed',
      'the agent to notice the dropped connection',
    );

    const api2 = stack.adminOf(await stack.controlPlane({ port: cp.port }));
    await waitFor(
      () => agent.logs().filter((l) => l['msg'] === 'agent connected').length >= 2,
      'the agent to reconnect by itself',
    );

    const done = await waitForTask(api2, task.id, TERMINAL);
    expect(done).toMatchObject({ state: 'succeeded', attempt: 1 });
    // Every progress report arrives exactly once: none lost while the server was down, none doubled.
    const progress = await api2.expect(200, 'GET', `/v1/tasks/${task.id}/progress`);
    expect(progress.items).toHaveLength(steps);
    const backups = await api2.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`);
    expect(backups.items).toHaveLength(1);
    expect(backups.items[0].taskId).toBe(task.id);
  });

  it('ends a backup whose agent was killed -9 mid-task, writes no backup twice, and keeps the agent credential across the restart', async () => {
    const { stack, api } = await setup();
    const { stateDir, agentId } = await stack.enroll('zone-a', 'host-1');
    const agent = await stack.runAgent(stateDir);
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 30_000, steps: 30 } });
    const task = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    await waitFor(
      async () => (await api.get(`/v1/tasks/${task.id}`)).body.progress.percent > 0,
      'first progress report',
    );

    await agent.kill9();
    const restarted = await stack.runAgent(stateDir);
    const ended = await waitForTask(api, task.id, TERMINAL);
    expect(ended.state).toBe('failed');
    expect(ended.error?.code).toBe('AGENT_INTERRUPTED');
    expect((await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items).toHaveLength(0);

    // Same identity after the restart: one agent, connected, no new enrollment needed.
    const agents = await api.expect(200, 'GET', '/v1/agents');
    expect(agents.items).toHaveLength(1);
    expect(agents.items[0]).toMatchObject({ id: agentId, state: 'connected' });
    expect(restarted.running).toBe(true);

    // The instance is free again: the next backup runs and produces exactly one record.
    await api.call('PATCH', `/v1/zones/zone-a/providers/${p.providerId}`, { config: { durationMs: 300, steps: 3 } });
    const next = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    expect((await waitForTask(api, next.id, TERMINAL)).state).toBe('succeeded');
    expect((await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items).toHaveLength(1);
  });

  it('marks a task lost when its agent dies and stays away past the lease, and a late report changes nothing', async () => {
    const { stack, api } = await setup({ CAIRN_TASK_LEASE_MS: '3000', CAIRN_HEARTBEAT_MS: '500' });
    const { stateDir, agentId } = await stack.enroll('zone-a', 'host-1');
    const agent = await stack.runAgent(stateDir);
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 60_000, steps: 60 } });
    const task = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    await waitForTask(api, task.id, ['running']);

    await agent.kill9();
    const lost = await waitForTask(api, task.id, TERMINAL);
    expect(lost.state).toBe('lost');
    expect(lost.error?.code).toBe('AGENT_LOST');
    expect((await api.expect(200, 'GET', `/v1/agents/${agentId}`)).state).toBe('disconnected');

    // The agent comes back and reports the attempt interrupted: the task stays lost, no backup appears.
    const back = await stack.runAgent(stateDir);
    await back.waitForLog(
      (l) => /AGENT_INTERRUPTED/.test(String(l['msg'])),
      'the agent to report the interrupted attempt',
    );
    await waitFor(
      async () => (await api.get(`/v1/agents/${agentId}`)).body.state === 'connected',
      'the agent to reconnect',
    );
    expect((await api.expect(200, 'GET', `/v1/tasks/${task.id}`)).state).toBe('lost');
    expect((await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items).toHaveLength(0);
  });

  it('sends an assignment again when the first send was lost between claim and socket', async () => {
    const { stack, api } = await setup();
    const { stateDir, agentId } = await stack.enroll('zone-a', 'host-1');
    await stack.runAgent(stateDir);
    // A task no agent can take (its zone has none) stays queued...
    const p = await protectInstance(api, 'zone-far', { config: { durationMs: 200, steps: 2 } });
    const task = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    expect((await api.expect(200, 'GET', `/v1/tasks/${task.id}`)).state).toBe('queued');
    // ...until it is claimed for the connected agent the way a dispatcher would, but the assign
    // frame never leaves (as when a process dies between the claim and the send).
    const store = await stack.store();
    const claimed = await store.db
      .updateTable('tasks')
      .set({
        state: 'dispatched',
        agentId,
        attempt: 1,
        dispatchedAt: Date.now() - 60_000,
        leaseExpiresAt: Date.now() + 60_000,
      })
      .where('id', '=', task.id)
      .where('state', '=', 'queued')
      .executeTakeFirst();
    expect(Number(claimed.numUpdatedRows)).toBe(1);
    const done = await waitForTask(api, task.id, TERMINAL);
    expect(done).toMatchObject({ state: 'succeeded', attempt: 1 });
    await stack.cp.proc.waitForLog(
      (l) => l['msg'] === 'assignment not acknowledged; sending it again',
      'the resend log line',
    );
  });
});
