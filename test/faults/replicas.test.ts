/**
 * Replicas killed -9 under load: three control planes on one MySQL/MariaDB database, agents given
 * all three URLs, 300 dummy backups (2,000 on 20 agents with `CAIRN_TEST_FAULTS=long`) and an SLA
 * schedule firing every 10 seconds. One replica is killed at a seeded random moment, then another.
 * The checker reads what the last replica holds at the end: every backup ends once, succeeded, with
 * one record and each progress report once; every 10-second fire of the schedule between its first
 * and its last made exactly one backup (or one skip), none twice, none missing; no event id twice
 * and one end event per task; the time until every agent holds a session again after each kill.
 * SQLite serves one process (a second refuses to start): this case is MySQL's only.
 * `CAIRN_TEST_FAULTS_SEED=<n>` replays a run's kill moments.
 */
import { describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { allPages } from '@cairn/test-harness/lists';
import { metricValue } from '@cairn/test-harness/metrics';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { seededRandom } from '@cairn/test-harness/random';
import { assignOffering, ENDED, offerDummy, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const AGENTS = LONG ? 20 : 5;
const SLOTS = LONG ? 25 : 10;
const TASKS = LONG ? 2000 : 300;
const STEPS = 3;
const FIRE_EVERY_MS = 10_000;
const END_EVENTS = ['task.succeeded', 'task.failed', 'task.lost', 'task.cancelled'];

interface Event {
  id: string;
  type: string;
  taskId: string | null;
  instanceId: string | null;
  data?: { fireAt?: string; missed?: number };
}

if (!backends.includes('mysql'))
  console.info('replicas fault case skipped: it needs MySQL/MariaDB (CAIRN_TEST_MYSQL_URL); SQLite serves one process');

describe.runIf(backends.includes('mysql'))('replicas killed -9 under load (mysql)', () => {
  const stack = withStack('mysql', { replicas: 3 });

  it(
    `${TASKS} backups on ${AGENTS} agents, a fire every 10 s, two of three replicas killed: nothing lost or doubled`,
    { timeout: LONG ? 3_600_000 : 900_000 },
    async () => {
      const seed = Number(process.env['CAIRN_TEST_FAULTS_SEED'] ?? Date.now() % 1_000_000);
      const rand = seededRandom(seed);
      const replicas = stack.replicas;
      const live = () => replicas.filter((cp) => cp.proc.running);
      /** A client of a replica still alive. */
      const api = (): Api => stack.adminOf(live()[0]!);
      const servers = replicas.map((cp) => cp.url).join(',');
      for (let i = 0; i < AGENTS; i++) await stack.addAgent({ slots: SLOTS, args: ['--server', servers] });
      const sessions = async () => {
        let n = 0;
        for (const cp of live()) n += (await metricValue(cp, 'cairn_agent_sessions')) ?? 0;
        return n;
      };
      await waitFor(async () => (await sessions()) === AGENTS, 'every agent to hold one session');

      const { offeringId, providerId } = await offerDummy(api(), 'zone-a', { provider: 'dummy', offering: 'bulk' });
      // The schedule: an SLA offering of the same provider firing every 10 seconds on one instance.
      const sla = await api().expect(201, 'POST', '/v1/offerings', {
        name: 'every-10s',
        zone: 'zone-a',
        providerId,
        allowAdhoc: false,
        allowUserSchedules: false,
        sla: { cron: '*/10 * * * * *', timezone: 'UTC', keepLast: 1000 },
      });
      const slaVm = await api().expect(201, 'POST', '/v1/instances', {
        name: 'sla-vm',
        zone: 'zone-a',
        locator: { dummy: { durationMs: 200, steps: STEPS, sizeBytes: 10 } },
      });
      await assignOffering(api(), slaVm.id, sla.id);
      // The long variant's 2,000 instances are more than a tenant's default quota (1,000).
      await api().expect(200, 'PUT', `/v1/tenants/${slaVm.tenantId}/quotas`, { instances: TASKS + 10 });

      const instances: string[] = [];
      for (let i = 0; i < TASKS; i++) {
        const durationMs = 2000 + Math.floor(rand() * 6000);
        const instance = await api().expect(201, 'POST', '/v1/instances', {
          name: `vm-${i}`,
          zone: 'zone-a',
          locator: { dummy: { durationMs, steps: STEPS, sizeBytes: 1000 + i } },
        });
        await assignOffering(api(), instance.id, offeringId);
        instances.push(instance.id as string);
      }
      // The schedule fires before the load begins (creating the instances can take less than its
      // 10 s on a fast machine), so the fires checked below span the whole run.
      await waitFor(
        async () => (await api().get(`/v1/tasks?kind=backup&instanceId=${slaVm.id}`)).body.items.length > 0,
        'the schedule to fire once before the backups are queued',
        30_000,
      );
      // Spread over the replicas, as a load balancer would.
      const tasks: string[] = [];
      for (const [i, id] of instances.entries())
        tasks.push(
          (
            (await stack
              .adminOf(replicas[i % replicas.length]!)
              .expect(202, 'POST', `/v1/instances/${id}/backups`)) as {
              id: string;
            }
          ).id,
        );
      const queuedAt = Date.now();

      // The killer: one replica at a seeded moment 3-13 s after the backups were queued, another
      // 5-15 s after the agents are all back; the time until they all are is measured each time.
      const kills: { replica: number; agents: number; rehomeMs: number }[] = [];
      let lastBack = queuedAt;
      for (let k = 0; k < 2; k++) {
        const waitMs = (k === 0 ? 3000 : 5000) + Math.floor(rand() * 10_000);
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastBack + waitMs - Date.now())));
        const victims = live();
        const victim: ControlPlaneProc = victims[Math.floor(rand() * victims.length)]!;
        const agentsThere = (await metricValue(victim, 'cairn_agent_sessions')) ?? 0;
        const killedAt = Date.now();
        await victim.proc.kill9();
        await waitFor(async () => (await sessions()) === AGENTS, 'every agent to hold a session again', 120_000);
        lastBack = Date.now();
        kills.push({ replica: replicas.indexOf(victim), agents: agentsThere, rehomeMs: lastBack - killedAt });
      }

      const last = api();
      const ended: TaskBody[] = [];
      for (const id of tasks) ended.push(await waitForTask(last, id, ENDED, LONG ? 1_800_000 : 600_000));
      const endedAt = Date.now();

      // Tasks: each ends once, succeeded, with one record and each progress report once.
      const notSucceeded = ended.filter((t) => t.state !== 'succeeded');
      const backups = await allPages<{ taskId: string }>(last, '/v1/backups');
      const records = new Map<string, number>();
      for (const b of backups) records.set(b.taskId, (records.get(b.taskId) ?? 0) + 1);
      const recordsOff = tasks.filter((id) => records.get(id) !== 1).length;
      let progressOff = 0;
      for (const t of ended) {
        const progress = await allPages<{ percent: number }>(last, `/v1/tasks/${t.id}/progress`);
        if (progress.length !== STEPS) progressOff++;
      }
      const retried = ended.filter((t) => t.attempt > 1).length;

      // Events: no id twice, one end event per task.
      const events = await allPages<Event>(last, '/v1/events');
      const eventIdsDoubled = events.length - new Set(events.map((e) => e.id)).size;
      const ends = new Map<string, number>();
      for (const e of events)
        if (e.taskId && END_EVENTS.includes(e.type)) ends.set(e.taskId, (ends.get(e.taskId) ?? 0) + 1);
      const endsOff = tasks.filter((id) => ends.get(id) !== 1).length;

      // Fires: each 10-second fire time from the first to the last made one backup or one skip;
      // a fire folded into a later one (no replica ticked for a whole interval) is counted as missed.
      const slaTasks = await allPages<{ id: string; createdAt: string }>(
        last,
        `/v1/tasks?kind=backup&instanceId=${slaVm.id}`,
      );
      const slot = (t: number) => Math.floor(t / FIRE_EVERY_MS) * FIRE_EVERY_MS;
      const fires = new Map<number, number>();
      const fired = (t: number) => fires.set(t, (fires.get(t) ?? 0) + 1);
      for (const t of slaTasks) fired(slot(Date.parse(t.createdAt)));
      let folded = 0;
      for (const e of events.filter((e) => e.instanceId === slaVm.id)) {
        if (e.type === 'schedule.skipped') fired(Date.parse(e.data!.fireAt!));
        if (e.type === 'schedule.caught_up') folded += e.data!.missed ?? 0;
      }
      const times = [...fires.keys()].sort((a, b) => a - b);
      const first = times[0]!;
      const lastFire = times.at(-1)!;
      const expected = (lastFire - first) / FIRE_EVERY_MS + 1;
      const doubled = [...fires.values()].filter((n) => n > 1).length;
      const dropped = expected - fires.size - folded;

      const figures =
        `replicas (mysql, seed ${seed}): ${TASKS} backups on ${AGENTS} agents of ${SLOTS} slots, 3 replicas, kills: ` +
        kills.map((k) => `replica ${k.replica + 1} with ${k.agents} agents, all back in ${k.rehomeMs} ms`).join('; ') +
        `; ${TASKS - notSucceeded.length} succeeded, ${notSucceeded.length} not, ${retried} at attempt > 1, ` +
        `${recordsOff} with other than one record, ${progressOff} with other than ${STEPS} progress reports; ` +
        `schedule: ${expected} fire times over ${((lastFire - first) / 1000).toFixed(0)} s, ${fires.size} fired, ${doubled} doubled, ${dropped} dropped, ${folded} folded; ` +
        `events ${events.length}, ids doubled ${eventIdsDoubled}, tasks with other than one end event ${endsOff}; ` +
        `all ended ${((endedAt - queuedAt) / 1000).toFixed(1)} s after queueing`;
      console.info(figures);
      expect(live(), figures).toHaveLength(1);
      expect(notSucceeded, figures).toEqual([]);
      expect(recordsOff, figures).toBe(0);
      expect(progressOff, figures).toBe(0);
      expect(eventIdsDoubled, figures).toBe(0);
      expect(endsOff, figures).toBe(0);
      expect(doubled, figures).toBe(0);
      expect(dropped, figures).toBe(0);
      expect(folded, figures).toBe(0);
      // The schedule fired through both kills, to the end of the run.
      expect(first, figures).toBeLessThan(queuedAt);
      expect(lastFire, figures).toBeGreaterThanOrEqual(slot(lastBack));
    },
  );
});
