import { describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { stackPerTest, type Stack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];

interface AgentBody {
  state: string;
  maintenance: { enabled: boolean };
}

describe.each(backends)('stopping an agent with SIGTERM (%s)', (backend) => {
  const newStack = stackPerTest(backend);

  async function setup(): Promise<{ stack: Stack; api: Api }> {
    const stack = await newStack();
    return { stack, api: stack.admin };
  }

  /** A backup of a fresh instance of `zone` whose dummy provider takes `durationMs`. */
  async function backup(api: Api, zone: string, durationMs: number): Promise<string> {
    const p = await protectInstance(api, zone, {
      config: { durationMs, steps: Math.max(1, Math.round(durationMs / 250)) },
    });
    return ((await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string }).id;
  }

  const running = (api: Api, id: string) =>
    waitFor(async () => {
      const t = (await api.get(`/v1/tasks/${id}`)).body as { state: string; progress: { percent: number } };
      return t.state === 'running' && t.progress.percent > 0 ? t : undefined;
    }, `task ${id} to run`);

  it('lets the running backup finish, exits 0, shows the agent draining meanwhile, and runs a task sent during the grace after the restart', async () => {
    const { stack, api } = await setup();
    const { stateDir, agentId } = await stack.enroll('zone-a', 'host-1');
    const agent = await stack.runAgent(stateDir, { args: ['--shutdown-grace', '60s'] });
    const first = await backup(api, 'zone-a', 3000);
    await running(api, first);

    agent.child.kill('SIGTERM');
    const draining = await waitFor(async () => {
      const a = (await api.expect(200, 'GET', `/v1/agents/${agentId}`)) as AgentBody;
      return a.state === 'draining' ? a : undefined;
    }, 'the control plane to show the agent draining');
    // Shutting down is no maintenance drain: nothing to undo after the restart.
    expect(draining.maintenance.enabled).toBe(false);
    const sentDuringGrace = await backup(api, 'zone-a', 200);

    await agent.exit();
    expect(agent.exitCode).toBe(0);
    expect((await waitForTask(api, first, TERMINAL)).state).toBe('succeeded');
    // The stopping agent did not take it; it waits for an agent.
    expect((await api.expect(200, 'GET', `/v1/tasks/${sentDuringGrace}`)).state).toBe('queued');
    expect(agent.logs().find((l) => l['msg'] === 'agent stopped')).toMatchObject({ interrupted: 0, unacknowledged: 0 });

    await stack.runAgent(stateDir);
    const after = await waitForTask(api, sentDuringGrace, TERMINAL);
    expect(after.state).toBe('succeeded');
    expect((await api.expect(200, 'GET', `/v1/agents/${agentId}`)).state).toBe('connected');
  });

  it('hands a task sent during the grace to another agent of the zone', async () => {
    const { stack, api } = await setup();
    const a = await stack.enroll('zone-b', 'host-a');
    const b = await stack.enroll('zone-b', 'host-b');
    const stopping = await stack.runAgent(a.stateDir, { slots: 4, args: ['--shutdown-grace', '60s'] });
    const first = await backup(api, 'zone-b', 6000);
    await running(api, first);
    // Only now the second agent: the first backup is surely on the first one.
    await stack.runAgent(b.stateDir);

    stopping.child.kill('SIGTERM');
    await waitFor(
      async () =>
        ((await api.expect(200, 'GET', `/v1/agents/${a.agentId}`)) as AgentBody).state === 'draining' || undefined,
      'the first agent to show draining',
    );
    const next = await backup(api, 'zone-b', 200);
    const done = (await waitForTask(api, next, TERMINAL)) as unknown as { state: string; agentId: string };
    expect(done).toMatchObject({ state: 'succeeded', agentId: b.agentId });
    // The other agent finished it while the first one was still finishing its own backup.
    expect(stopping.running).toBe(true);

    await stopping.exit();
    expect(stopping.exitCode).toBe(0);
    expect((await waitForTask(api, first, TERMINAL)).state).toBe('succeeded');
  });

  it('interrupts the running backup at once on a second SIGTERM, and exits', async () => {
    const { stack, api } = await setup();
    const { stateDir } = await stack.enroll('zone-a', 'host-1');
    const agent = await stack.runAgent(stateDir, { args: ['--shutdown-grace', '10m'] });
    const task = await backup(api, 'zone-a', 120_000);
    await running(api, task);

    agent.child.kill('SIGTERM');
    await agent.waitForLog(
      (l) => l['msg'] === 'agent shutting down: new tasks are refused, running ones may finish',
      'the shutdown to begin',
    );
    agent.child.kill('SIGTERM');
    const ended = await waitForTask(api, task, TERMINAL, 10_000);
    expect(ended).toMatchObject({ state: 'failed', error: { code: 'AGENT_INTERRUPTED' } });
    await waitFor(() => !agent.running || undefined, 'the agent to exit', 10_000);
    expect(agent.exitCode).toBe(0);
  });

  it('interrupts the running backup when the grace ends, and exits 0', async () => {
    const { stack, api } = await setup();
    const { stateDir } = await stack.enroll('zone-a', 'host-1');
    const agent = await stack.runAgent(stateDir, { args: ['--shutdown-grace', '2s'] });
    const task = await backup(api, 'zone-a', 120_000);
    await running(api, task);

    agent.child.kill('SIGTERM');
    const ended = await waitForTask(api, task, TERMINAL, 20_000);
    expect(ended).toMatchObject({ state: 'failed', error: { code: 'AGENT_INTERRUPTED' } });
    expect(ended.error?.message).toContain('2000 ms shutdown grace');
    await waitFor(() => !agent.running || undefined, 'the agent to exit', 10_000);
    expect(agent.exitCode).toBe(0);
  });

  it("exits non-zero, with a log line, on an error of the agent's own", async () => {
    const { stack } = await setup();
    const { stateDir } = await stack.enroll('zone-a', 'host-1');
    const agent = await stack.runAgent(stateDir, { env: { CAIRN_AGENT_TEST_THROW_AFTER_MS: '1500' } });
    await waitFor(() => !agent.running || undefined, 'the agent to exit', 15_000);
    expect(agent.exitCode).toBe(70);
    const line = agent.logs().find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('uncaught exception'));
    expect(line).toMatchObject({ level: 60, err: { message: 'injected agent bug (CAIRN_AGENT_TEST_THROW_AFTER_MS)' } });
  });
});
