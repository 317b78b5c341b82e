/**
 * F4, a lossy link: 60 backups (the dummy plugin, 4 progress reports each; 300 with
 * `CAIRN_TEST_FAULTS=long`) on two agents, each reaching the control plane through a proxy of the
 * suite's own (`test/harness/lossy-proxy.ts`). While they run, each proxy is given, at random
 * moments every 0.3-1.5 s, one fault: latency with jitter, every connection reset, every
 * connection closed (FIN), a half-open spell (new connections accepted and never answered, the
 * current ones reset so the agent has to open one), or a black hole (nothing moves, nothing
 * closes) for 0.5-3 s. The lease is long here (60 s): losing tasks past their lease is F3's case;
 * this one asks that a bad link loses and doubles nothing and leaves no session stuck. The checker:
 * every backup succeeded at its first attempt with one record and every progress report once, no
 * event doubled; once the faults stop, every agent has exactly one open connection and its
 * heartbeats advance. The seed is printed: `CAIRN_TEST_FAULTS_SEED=<n>` replays the schedule.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { backupHistory, historyFigures } from '@cairn/test-harness/fault-checks';
import { allPages } from '@cairn/test-harness/lists';
import { LossyProxy } from '@cairn/test-harness/lossy-proxy';
import { seededRandom } from '@cairn/test-harness/random';
import { assignOffering, ENDED, offerDummy, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const BACKUPS = LONG ? 300 : 60;
const AGENTS = 2;
const STEPS = 4;

const FAULTS = ['latency', 'reset', 'fin', 'half-open', 'black-hole'] as const;
type Fault = (typeof FAULTS)[number];

/** Gives `proxy` a fault at random moments until `stopped()`; counts them in `counts`. */
async function faultSchedule(
  proxy: LossyProxy,
  rand: () => number,
  stopped: () => boolean,
  counts: Record<Fault, number>,
): Promise<void> {
  while (!stopped()) {
    await sleep(300 + rand() * 1200);
    if (stopped()) break;
    const fault = FAULTS[Math.floor(rand() * FAULTS.length)]!;
    counts[fault]++;
    switch (fault) {
      case 'latency':
        proxy.latency(Math.floor(rand() * 200), Math.floor(rand() * 100));
        break;
      case 'reset':
      case 'fin':
        proxy.drop(fault === 'reset' ? 'reset' : 'fin');
        break;
      case 'half-open':
      case 'black-hole':
        proxy.mode(fault);
        if (fault === 'half-open') proxy.drop('reset');
        await sleep(500 + rand() * 2500);
        proxy.mode('pass');
        break;
    }
  }
  proxy.latency(0);
  proxy.mode('pass');
}

describe.each(backends)('F4: a lossy link between agents and the control plane (%s)', (backend) => {
  const stack = withStack(backend, { env: { CAIRN_TASK_LEASE_MS: '60000' } });

  it(
    `${BACKUPS} backups through latency, resets, FINs, half-open connections and black holes: nothing lost or doubled, no stuck session`,
    { timeout: LONG ? 1_800_000 : 240_000 },
    async () => {
      const seed = Number(process.env['CAIRN_TEST_FAULTS_SEED'] ?? Date.now() % 1_000_000);
      const rand = seededRandom(seed);
      const api = stack.admin;
      const proxies: LossyProxy[] = [];
      for (let i = 0; i < AGENTS; i++) {
        const proxy = await LossyProxy.start({ host: '127.0.0.1', port: stack.cp.port }, rand);
        stack.onTeardown(() => proxy.close());
        proxies.push(proxy);
        await stack.addAgent({ name: `host-${i + 1}`, slots: 4, args: ['--server', proxy.url] });
      }
      const { offeringId } = await offerDummy(api, 'zone-a', { provider: 'dummy', offering: 'f4' });
      const instances: string[] = [];
      for (let i = 0; i < BACKUPS; i++) {
        const instance = await api.expect(201, 'POST', '/v1/instances', {
          name: `vm-${i}`,
          zone: 'zone-a',
          locator: { dummy: { durationMs: 500 + Math.floor(rand() * 2500), steps: STEPS, sizeBytes: 1000 + i } },
        });
        await assignOffering(api, instance.id, offeringId);
        instances.push(instance.id as string);
      }

      const counts: Record<Fault, number> = { latency: 0, reset: 0, fin: 0, 'half-open': 0, 'black-hole': 0 };
      let stop = false;
      const schedules = proxies.map((p) =>
        faultSchedule(p, seededRandom(Math.floor(rand() * 2 ** 31)), () => stop, counts),
      );
      const startedAt = performance.now();
      const ended: TaskBody[] = [];
      try {
        const tasks: string[] = [];
        for (const id of instances)
          tasks.push(((await api.expect(202, 'POST', `/v1/instances/${id}/backups`)) as { id: string }).id);
        for (const id of tasks) ended.push(await waitForTask(api, id, ENDED, LONG ? 1_200_000 : 180_000));
      } finally {
        stop = true;
        await Promise.all(schedules);
      }
      const allEndedS = (performance.now() - startedAt) / 1000;

      // No stuck session: once the link is good again, each agent has one connection and beats on it.
      await waitFor(
        async () => {
          const agents = await allPages<{ state: string }>(api, '/v1/agents');
          return agents.every((a) => a.state === 'connected') && proxies.every((p) => p.open === 1);
        },
        'every agent connected again, on one connection each',
        60_000,
      );
      const seen = async () =>
        new Map(
          (await allPages<{ id: string; lastSeenAt: string }>(api, '/v1/agents')).map((a) => [
            a.id,
            Date.parse(a.lastSeenAt),
          ]),
        );
      const before = await seen();
      await sleep(2_500);
      const after = await seen();
      const sessions = stack.agents.map((a) => a.proc.logs().filter((l) => l['msg'] === 'agent connected').length);

      const notSucceeded = ended.filter((t) => t.state !== 'succeeded' || t.attempt !== 1);
      // A task that did not succeed: did an agent run it all the same (its own log says)?
      const agentSaid = (t: TaskBody, msg: string) =>
        stack.agents.some((a) => a.proc.logs().some((l) => l['taskId'] === t.id && l['msg'] === msg));
      const ranAnyway = notSucceeded.filter((t) => agentSaid(t, 'task started'));
      const succeededThere = ranAnyway.filter((t) => agentSaid(t, 'task succeeded'));
      const history = await backupHistory(api, ended, STEPS);
      const faults = FAULTS.map((f) => `${counts[f]} ${f}`).join(', ');
      const figures = `F4 (${backend}, seed ${seed}): ${BACKUPS} backups on ${AGENTS} agents through lossy proxies, all ended in ${allEndedS.toFixed(1)} s; faults: ${faults}; ${proxies.reduce((n, p) => n + p.counts.accepted, 0)} connections accepted (${proxies.reduce((n, p) => n + p.counts.swallowed, 0)} swallowed), sessions per agent ${sessions.join(' / ')}; ${ended.length - notSucceeded.length} succeeded at attempt 1, ${notSucceeded.length} not (${ranAnyway.length} of them run by an agent all the same, ${succeededThere.length} to success there); ${historyFigures(history)}; open connections at the end ${proxies.map((p) => p.open).join(' / ')}`;
      console.info(figures);
      expect(
        notSucceeded.map((t) => `${t.id} ${t.state} attempt ${t.attempt} ${t.error?.code ?? ''}`),
        figures,
      ).toEqual([]);
      expect(history.recordsOff, figures).toEqual([]);
      expect(history.records, figures).toBe(BACKUPS);
      expect(history.progressLost, figures).toBe(0);
      expect(history.progressDoubled, figures).toBe(0);
      expect(history.eventIdsDoubled, figures).toBe(0);
      expect(history.endsOff, figures).toEqual([]);
      expect(history.startedOff, figures).toEqual([]);
      expect(
        Object.values(counts).reduce((a, b) => a + b, 0),
        figures,
      ).toBeGreaterThan(0);
      for (const { agentId } of stack.agents)
        expect(after.get(agentId), `${figures}: ${agentId}'s lastSeenAt`).toBeGreaterThan(before.get(agentId)!);
    },
  );
});
