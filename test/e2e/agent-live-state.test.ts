import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { runAgentCommand, type ControlPlaneProc, type Proc } from '@cairn/test-harness/processes';
import { agentCredential, RawAgent, upgradeStatus } from '@cairn/test-harness/raw-agent';
import { protectInstance, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];
/** The smallest frame budget the control plane takes: room for a real agent, none for a flood. */
const FRAME_RATE = 10;
const FRAME_BURST = 100;

interface AgentBody {
  state: string;
  maintenance: { enabled: boolean; message: string; source: string };
  credential: { rotation: string; rotatedAt: string | null };
}

/**
 * Drain, shutdown and credential changes reach the control plane on the session that is open:
 * the agent no longer reconnects to say them. "No reconnect" is seen on both ends: the agent
 * logs `agent connected` once per session, the control plane once per hello.
 */
describe.each(backends)('agent state told on the live session (%s)', (backend) => {
  const stack = withStack(backend, {
    env: {
      CAIRN_SECRET_KEY: 'c'.repeat(64),
      CAIRN_AGENT_FRAME_RATE: String(FRAME_RATE),
      CAIRN_AGENT_FRAME_BURST: String(FRAME_BURST),
    },
  });
  let cp: ControlPlaneProc;
  let api: Api;

  beforeAll(() => {
    cp = stack.cp;
    api = stack.admin;
  });

  const agentProc = (stateDir: string, args: string[] = []) => stack.runAgent(stateDir, { args });
  const sessionsSeen = (agentId: string) =>
    cp.proc.logs().filter((l) => l['msg'] === 'agent connected' && l['agentId'] === agentId).length;
  const sessionsOpened = (proc: Proc) => proc.logs().filter((l) => l['msg'] === 'agent connected').length;
  const agentView = (agentId: string) => api.expect<AgentBody>(200, 'GET', `/v1/agents/${agentId}`);
  const maintenanceOf = (agentId: string) =>
    api.expect<AgentBody['maintenance']>(200, 'GET', `/v1/agents/${agentId}/maintenance`);
  const maintenanceShown = (agentId: string, enabled: boolean) =>
    waitFor(async () => {
      const m = await maintenanceOf(agentId);
      return m.enabled === enabled ? m : undefined;
    }, `agent ${agentId} maintenance enabled=${enabled}`);
  const hostDrain = async (stateDir: string, message: string | null) => {
    const args = message === null ? ['undrain'] : ['drain', '--message', message];
    expect((await runAgentCommand([...args, '--state-dir', stateDir])).exitCode).toBe(0);
  };
  const backup = async (instanceId: string) => {
    const task = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${instanceId}/backups`);
    return waitForTask(api, task.id, TERMINAL);
  };

  it('a drain and an undrain on the host reach the control plane without a new session, with their maintenance effects', async () => {
    const { stateDir, agentId } = await stack.enroll('zone-drain', 'host-d');
    const agent = await agentProc(stateDir);
    const p = await protectInstance(api, 'zone-drain', { config: { durationMs: 100, steps: 1 } });
    expect((await backup(p.instanceId)).state).toBe('succeeded');
    expect([sessionsOpened(agent), sessionsSeen(agentId)]).toEqual([1, 1]);

    await hostDrain(stateDir, 'host patching');
    expect(await maintenanceShown(agentId, true)).toMatchObject({
      enabled: true,
      message: 'host patching',
      source: 'agent',
    });
    // The zone's only agent is drained on its host: its backups are refused as a window refuses them.
    const refused = await api.post(`/v1/instances/${p.instanceId}/backups`);
    expect(refused.status, JSON.stringify(refused.body)).toBe(503);
    expect(refused.body).toMatchObject({ code: 'maintenance', detail: 'host patching' });

    await hostDrain(stateDir, null);
    await maintenanceShown(agentId, false);
    expect((await backup(p.instanceId)).state).toBe('succeeded');

    expect([sessionsOpened(agent), sessionsSeen(agentId)]).toEqual([1, 1]);
    expect((await agentView(agentId)).state).toBe('connected');
  }, 60_000);

  it('SIGTERM tells the control plane on the open session before the socket closes; the shutdown goes on as before', async () => {
    const { stateDir, agentId } = await stack.enroll('zone-stop', 'host-s');
    const agent = await agentProc(stateDir, ['--shutdown-grace', '60s']);
    const p = await protectInstance(api, 'zone-stop', { config: { durationMs: 3000, steps: 3 } });
    const running = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
    await waitForTask(api, running.id, ['running']);

    agent.child.kill('SIGTERM');
    const draining = await waitFor(async () => {
      const a = await agentView(agentId);
      return a.state === 'draining' ? a : undefined;
    }, 'the control plane to show the agent draining');
    expect(draining.maintenance.enabled).toBe(false);
    const queued = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${p.instanceId}/backups`);

    await agent.exit();
    expect(agent.exitCode).toBe(0);
    expect((await waitForTask(api, running.id, TERMINAL)).state).toBe('succeeded');
    expect((await api.expect<TaskBody>(200, 'GET', `/v1/tasks/${queued.id}`)).state).toBe('queued');
    expect([sessionsOpened(agent), sessionsSeen(agentId)]).toEqual([1, 1]);
    // Told on the session, before it closed.
    const lines = cp.proc.logs().filter((l) => l['agentId'] === agentId);
    const told = lines.findIndex((l) => l['msg'] === 'agent state changed' && l['shuttingDown'] === true);
    const closed = lines.findIndex((l) => l['msg'] === 'agent session closed');
    expect(told).toBeGreaterThanOrEqual(0);
    expect(closed).toBeGreaterThan(told);

    const restarted = await agentProc(stateDir);
    expect((await waitForTask(api, queued.id, TERMINAL)).state).toBe('succeeded');
    expect((await agentView(agentId)).state).toBe('connected');
    await restarted.stop();
  }, 60_000);

  it('a credential rotated while connected is stored and acknowledged on the same session; the old one is retired', async () => {
    const { stateDir, agentId } = await stack.enroll('zone-rotate', 'host-r');
    const old = agentCredential(stateDir).credential;
    const agent = await agentProc(stateDir);

    await api.expect(202, 'POST', `/v1/agents/${agentId}/rotate-credential`);
    const view = await waitFor(async () => {
      const a = await agentView(agentId);
      return a.credential.rotation === 'none' && a.credential.rotatedAt ? a : undefined;
    }, 'the rotation to complete');
    expect(view.state).toBe('connected');
    const rotated = agentCredential(stateDir).credential;
    expect(rotated).not.toBe(old);
    expect(await upgradeStatus(cp.url, old)).toBe(401);
    expect([sessionsOpened(agent), sessionsSeen(agentId)]).toEqual([1, 1]);
    // The session goes on: it still takes work.
    const p = await protectInstance(api, 'zone-rotate', { config: { durationMs: 100, steps: 1 } });
    expect((await backup(p.instanceId)).state).toBe('succeeded');
    expect(sessionsOpened(agent)).toBe(1);

    // The next session authenticates with the new credential.
    await agent.stop();
    const again = await agentProc(stateDir);
    expect((await backup(p.instanceId)).state).toBe('succeeded');
    await again.stop();
  }, 60_000);

  describe('malformed AgentState and CredentialStored frames close the session with a protocol error naming the field; nothing changes', () => {
    it('AgentState: a shutdown withdrawn, a drain message without a drain', async () => {
      const enrolled = await stack.enroll('zone-raw', 'raw-1');
      const identity = agentCredential(enrolled.stateDir);

      // A valid one is applied on the session...
      const raw = await RawAgent.connect(cp, identity);
      expect(raw.received.find((f) => f.body === 'welcome')?.welcome?.acceptsAgentState).toBe(true);
      raw.send({ agentState: { draining: true, drainMessage: 'raw drain', shuttingDown: true } });
      expect(await maintenanceShown(identity.agentId, true)).toMatchObject({
        enabled: true,
        message: 'raw drain',
        source: 'agent',
      });
      await waitFor(async () => (await agentView(identity.agentId)).state === 'draining' || undefined, 'draining');

      // ...a shutdown is never withdrawn.
      raw.send({ agentState: { draining: false, shuttingDown: false } });
      const withdrawn = await raw.closedBy();
      expect(withdrawn.code).toBe(1008);
      expect(withdrawn.reason).toMatch(/^agent_state frame: shutting_down is false/);
      expect(await maintenanceOf(identity.agentId)).toMatchObject({
        enabled: true,
        message: 'raw drain',
        source: 'agent',
      });

      const second = await RawAgent.connect(cp, identity, { draining: true, drainMessage: 'raw drain' });
      await waitFor(async () => (await agentView(identity.agentId)).state === 'connected' || undefined, 'connected');
      second.send({ agentState: { draining: false, drainMessage: 'left over' } });
      const stray = await second.closedBy();
      expect(stray).toEqual({ code: 1008, reason: 'agent_state frame: drain_message is set but draining is false' });
      expect(await maintenanceOf(identity.agentId)).toMatchObject({
        enabled: true,
        message: 'raw drain',
        source: 'agent',
      });
    }, 60_000);

    it('CredentialStored: empty, or a credential the agent was never sent', async () => {
      const enrolled = await stack.enroll('zone-raw', 'raw-2');
      const identity = agentCredential(enrolled.stateDir);
      await api.expect(202, 'POST', `/v1/agents/${identity.agentId}/rotate-credential`);

      const first = await RawAgent.connect(cp, identity);
      const offered = (await first.next('credential')).credential!.credential;
      first.send({ credentialStored: { credential: '' } });
      expect(await first.closedBy()).toEqual({ code: 1008, reason: 'credential_stored frame: credential is empty' });

      const second = await RawAgent.connect(cp, identity);
      await second.next('credential');
      second.send({ credentialStored: { credential: `${offered}x` } });
      expect(await second.closedBy()).toEqual({
        code: 1008,
        reason: 'credential_stored frame: credential is not one this agent was sent',
      });
      // Nothing retired: the rotation still waits, and both credentials work.
      expect((await agentView(identity.agentId)).credential.rotation).toBe('pending');
      expect(await upgradeStatus(cp.url, identity.credential)).toBe(101);

      // The right one retires the old credential on the same session.
      const third = await RawAgent.connect(cp, identity);
      await third.next('credential');
      third.send({ credentialStored: { credential: offered } });
      await waitFor(
        async () => (await agentView(identity.agentId)).credential.rotation === 'none' || undefined,
        'the rotation to complete',
      );
      expect(third.closed).toBeUndefined();
      expect(await upgradeStatus(cp.url, identity.credential)).toBe(401);
      third.close();
    }, 60_000);

    it('AgentState frames count against the frame budget like any other', async () => {
      const enrolled = await stack.enroll('zone-raw', 'raw-3');
      const identity = agentCredential(enrolled.stateDir);
      const raw = await RawAgent.connect(cp, identity);
      for (let i = 0; i < FRAME_BURST * 10; i++) raw.send({ agentState: { draining: i % 2 === 0 } });
      const closed = await raw.closedBy();
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/^over the frame rate limit/);
    }, 60_000);
  });
});
