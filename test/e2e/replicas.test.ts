import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import type { ControlPlaneProc, Proc } from '@cairn/test-harness/processes';
import { ENDED as TERMINAL, protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const SECRET_KEY = 'a'.repeat(64);

// Several replicas share one MySQL database and nothing but it; SQLite is the
// single-process quick start, so this runs on MySQL only (and shows as skipped without it).
describe.runIf(backends.includes('mysql'))('two control-plane replicas on one MySQL database', () => {
  // The agent talks to replica A only; every API call below goes to replica B.
  const stack = withStack('mysql', {
    // debug: each replica logs its maintenance checks, which the readiness test waits on.
    env: { CAIRN_SECRET_KEY: SECRET_KEY, CAIRN_LOG_LEVEL: 'debug' },
    replicas: 2,
    agents: [{ name: 'host-1' }],
  });
  let a: ControlPlaneProc;
  let b: ControlPlaneProc;
  let agent: Proc;
  let viaB: Api;

  beforeAll(() => {
    [a, b] = stack.replicas as [ControlPlaneProc, ControlPlaneProc];
    agent = stack.agent.proc;
    viaB = stack.adminOf(b);
  });

  it('maintenance set on one replica reaches the agent held by the other, and is ready once', async () => {
    const p = await protectInstance(viaB, 'zone-a', { config: { durationMs: 60_000, steps: 60 } });
    const task = (await viaB.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    await waitForTask(viaB, task.id, ['running']);
    const viaA = stack.adminOf(a);
    const count = (msg: string) => agent.logs().filter((l) => l['msg'] === msg).length;
    const set = 'maintenance drain set by the control plane; new backups are refused';
    const lifted = 'maintenance drain lifted by the control plane';
    const [setBefore, liftedBefore] = [count(set), count(lifted)];
    expect(
      await viaB.expect(200, 'PUT', '/v1/maintenance', { enabled: true, message: 'replica window' }),
    ).toMatchObject({ enabled: true, ready: false, runningBackups: 1 });
    await waitFor(() => count(set) > setBefore || undefined, 'the agent on replica A to be told');
    const waiting = viaA.get('/v1/maintenance?wait=ready&timeoutS=60');
    await viaB.expect(202, 'POST', `/v1/tasks/${task.id}/cancel`);
    expect((await waiting).body).toMatchObject({ ready: true, runningBackups: 0 });
    // Both replicas sweep for readiness every second. Once each has swept twice more (its first
    // may have begun before readiness was recorded), readiness is still recorded once.
    const checks = (cp: ControlPlaneProc) => cp.proc.logs().filter((l) => l['msg'] === 'maintenance checked').length;
    const before = [a, b].map(checks);
    await waitFor(
      () => [a, b].every((cp, i) => checks(cp) >= before[i]! + 2) || undefined,
      'both replicas to sweep for readiness twice more',
    );
    const events = (await viaA.expect(200, 'GET', '/v1/events?limit=500')).items as {
      type: string;
      tenantId: string;
    }[];
    const ready = events.filter((e) => e.type === 'maintenance.ready');
    expect(new Set(ready.map((e) => e.tenantId)).size).toBe(ready.length);
    expect(ready.length).toBeGreaterThan(0);
    await viaB.expect(200, 'PUT', '/v1/maintenance', { enabled: false });
    await waitFor(() => count(lifted) > liftedBefore || undefined, 'the agent to be released');
  });

  it('runs a backup created on one replica through an agent connected to the other', async () => {
    const p = await protectInstance(viaB, 'zone-a', { config: { durationMs: 300, steps: 3 } });
    const task = (await viaB.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    const done = await waitForTask(viaB, task.id, TERMINAL);
    expect(done).toMatchObject({ state: 'succeeded', attempt: 1 });
    expect((await viaB.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items).toHaveLength(1);
    const agents = await viaB.expect(200, 'GET', '/v1/agents');
    expect(agents.items[0]).toMatchObject({ state: 'connected' });
  });

  it('delivers a cancel requested on one replica to the agent held by the other', async () => {
    const p = await protectInstance(viaB, 'zone-a', { config: { durationMs: 60_000, steps: 60 } });
    const task = (await viaB.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    await waitForTask(viaB, task.id, ['running']);
    await viaB.expect(202, 'POST', `/v1/tasks/${task.id}/cancel`);
    expect((await waitForTask(viaB, task.id, TERMINAL)).state).toBe('cancelled');
  });

  it('dispatches each of many tasks exactly once while both replicas hold agents', async () => {
    const second = (await stack.addAgent({ name: 'host-2', via: b, slots: 4 })).proc;
    try {
      const p = await Promise.all(
        Array.from({ length: 8 }, () => protectInstance(viaB, 'zone-a', { config: { durationMs: 100, steps: 2 } })),
      );
      const tasks = await Promise.all(
        p.flatMap((x) => [0, 1, 2].map(() => viaB.expect(202, 'POST', `/v1/instances/${x.instanceId}/backups`))),
      );
      for (const t of tasks) expect((await waitForTask(viaB, t.id, TERMINAL)).state).toBe('succeeded');
      for (const x of p) {
        expect((await viaB.expect(200, 'GET', `/v1/backups?instanceId=${x.instanceId}`)).items).toHaveLength(3);
      }
      const attempts = await Promise.all(
        tasks.map(async (t) => (await viaB.expect(200, 'GET', `/v1/tasks/${t.id}`)).attempt),
      );
      expect(new Set(attempts)).toEqual(new Set([1]));
    } finally {
      await second.stop();
    }
  });
});
