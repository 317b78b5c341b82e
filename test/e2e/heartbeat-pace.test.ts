import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import type { DecodedFrame } from '@cairn/proto';
import { metricValue } from '@cairn/test-harness/metrics';
import { agentCredential, RawAgent } from '@cairn/test-harness/raw-agent';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/**
 * The heartbeats a control plane takes a second are bounded: 2 a second here, with a configured
 * interval of 200 ms, so a second agent already makes it tell a longer interval (whole seconds),
 * in the welcome of new sessions and in the heartbeat answers of open ones.
 */
describe.each(backends)('heartbeat pace (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_HEARTBEAT_MS: '200', CAIRN_HEARTBEATS_PER_S: '2', CAIRN_TASK_LEASE_MS: '60000' },
  });

  /** Sends a heartbeat and answers the interval the control plane's answer carries (0: unchanged). */
  const beat = async (raw: RawAgent) => {
    const seen = new Set(raw.received);
    raw.send({ heartbeat: { sentAtMs: Date.now(), running: 0 } });
    const answer = await raw.next('heartbeat', (f: DecodedFrame) => !seen.has(f));
    return Number(answer.heartbeat!.intervalMs ?? 0);
  };
  const welcomeOf = async (raw: RawAgent) => Number((await raw.next('welcome')).welcome!.heartbeatIntervalMs);

  it('tells a growing fleet a longer interval and a shrinking one a shorter, and a real agent follows', async () => {
    // A real agent first: alone, it is told the configured 200 ms.
    const real = await stack.enroll('zone-pace', 'real');
    const agent = await stack.runAgent(real.stateDir);
    await waitFor(() => agent.logs().some((l) => l['msg'] === 'agent connected'), 'the real agent connected');
    expect(agent.logs().find((l) => l['msg'] === 'agent connected')!['heartbeatIntervalMs']).toBe(200);

    // Four more sessions: 2, 3, 4 and 5 agents need 1 s, 1.5 s, 2 s and 2.5 s at 2 a second.
    const raws: RawAgent[] = [];
    const welcomes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const { stateDir } = await stack.enroll('zone-pace', `raw-${i}`);
      const raw = await RawAgent.connect(stack.cp, agentCredential(stateDir));
      raws.push(raw);
      welcomes.push(await welcomeOf(raw));
    }
    expect(welcomes).toEqual([1000, 1000, 2000, 2000]);

    // An open session hears the new pace once, on the answer to its next heartbeat.
    expect(await beat(raws[0]!)).toBe(3000);
    expect(await beat(raws[0]!)).toBe(0);
    // Told 2 s in its welcome: 3 s is more than a quarter from it.
    expect(await beat(raws[3]!)).toBe(3000);
    expect(await beat(raws[3]!)).toBe(0);

    // The real agent beats every 200 ms: it heard each step of the pace as the fleet grew, the
    // last one 3 s, and beats at that pace from then on.
    const retimed = () => agent.logs().filter((l) => l['msg'] === 'the control plane set a new heartbeat interval');
    const latest = () => retimed().at(-1)?.['heartbeatIntervalMs'];
    await waitFor(() => latest() === 3000, 'the real agent retimed to 3 s');
    expect(retimed()[0]).toMatchObject({ was: 200 });
    const steps = retimed().map((l) => l['heartbeatIntervalMs'] as number);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    const grown = retimed().length;

    // The fleet shrinks to the real agent and one raw session: 1 s.
    for (const raw of raws.slice(1)) raw.close();
    await waitFor(
      async () =>
        (await stack.admin.expect<{ items: { state: string }[] }>(200, 'GET', '/v1/agents?limit=50')).items.filter(
          (a) => a.state === 'connected',
        ).length === 2,
      'two sessions left',
    );
    expect(await beat(raws[0]!)).toBe(1000);
    await waitFor(() => retimed().length > grown, 'the real agent retimed again');
    expect(retimed()[grown]).toMatchObject({ heartbeatIntervalMs: 1000, was: 3000 });
    // It stayed on its one session throughout.
    expect(agent.logs().filter((l) => l['msg'] === 'agent connected')).toHaveLength(1);
    raws[0]!.close();
  });

  it('closes the session of an agent that sends an interval of its own', async () => {
    for (const [i, heartbeat] of [{ intervalMs: 5 }, { idleIntervalMs: 5 }].entries()) {
      const { stateDir } = await stack.enroll('zone-pace', `bad-${i}`);
      const raw = await RawAgent.connect(stack.cp, agentCredential(stateDir));
      raw.send({ heartbeat: { sentAtMs: Date.now(), running: 0, ...heartbeat } });
      const closed = await raw.closedBy();
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/interval_ms and idle_interval_ms are the control plane's to set/);
    }
  });
});

/**
 * An agent holding no task renews no lease: it beats at the idle interval, the budget's pace
 * beyond the lease's cap. Here a 3 s lease caps the interval at 1 s, and three sessions at one
 * heartbeat a second make the idle interval 3 s (at most one lease). A task of more than two leases
 * still succeeds: the agent beats at 1 s again from the moment it takes it.
 */
describe.each(backends)('idle heartbeat pace (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_HEARTBEAT_MS: '200', CAIRN_HEARTBEATS_PER_S: '1', CAIRN_TASK_LEASE_MS: '3000' },
  });

  it('beats less often while it holds no task, and at the lease pace while it runs one', async () => {
    const real = await stack.enroll('zone-idle', 'real');
    const agent = await stack.runAgent(real.stateDir);
    await waitFor(() => agent.logs().some((l) => l['msg'] === 'agent connected'), 'the real agent connected');
    const raws: RawAgent[] = [];
    for (let i = 0; i < 2; i++) {
      const { stateDir } = await stack.enroll('zone-idle', `raw-${i}`);
      const raw = await RawAgent.connect(stack.cp, agentCredential(stateDir));
      raws.push(raw);
      // A new session is told both intervals in its welcome (for the sessions held before it).
      const welcome = (await raw.next('welcome')).welcome!;
      expect([welcome.heartbeatIntervalMs, welcome.idleHeartbeatIntervalMs]).toEqual(
        i === 0 ? [1000, 1000] : [1000, 2000],
      );
    }
    expect(await metricValue(stack.cp, 'cairn_agent_heartbeat_interval_seconds')).toBe(1);
    expect(await metricValue(stack.cp, 'cairn_agent_idle_heartbeat_interval_seconds')).toBe(3);

    // The real agent hears the idle pace on its next heartbeat's answer.
    const retimed = () => agent.logs().filter((l) => l['msg'] === 'the control plane set a new heartbeat interval');
    await waitFor(() => retimed().at(-1)?.['idleHeartbeatIntervalMs'] === 3000, 'the real agent told 3 s idle');
    expect(retimed().at(-1)).toMatchObject({ heartbeatIntervalMs: 1000 });

    // Idle, over 9 s: about 3 heartbeats (the raw sessions send none), not the 9 of the busy pace.
    const beats = async () => (await metricValue(stack.cp, 'cairn_agent_heartbeats_total')) ?? 0;
    const idleFrom = await beats();
    await new Promise((r) => setTimeout(r, 9000));
    const idleBeats = (await beats()) - idleFrom;
    expect(idleBeats).toBeGreaterThanOrEqual(1);
    expect(idleBeats).toBeLessThanOrEqual(5);
    // Still shown connected between its heartbeats: presence is judged against two leases.
    const view = await stack.admin.expect<{ state: string }>(200, 'GET', `/v1/agents/${real.agentId}`);
    expect(view.state).toBe('connected');

    // A task of three leases (9 s): were the agent still beating every 3 s, its 3 s lease would lapse.
    const p = await protectInstance(stack.admin, 'zone-idle', {
      config: { durationMs: 9000, steps: 9 },
      agentId: real.agentId,
    });
    const task = await stack.admin.expect<{ id: string }>(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
    await waitForTask(stack.admin, task.id, ['running']);
    const busyFrom = await beats();
    const done = await waitForTask(stack.admin, task.id, ['succeeded', 'failed', 'lost', 'cancelled'], 60_000);
    expect(done.state).toBe('succeeded');
    // About 9 heartbeats at 1 s (3 at the idle pace).
    expect((await beats()) - busyFrom).toBeGreaterThanOrEqual(5);
    for (const raw of raws) raw.close();
  });
});
