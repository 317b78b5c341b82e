import { CompiledQuery } from 'kysely';
import { describe, expect, it } from 'vitest';
import { HELD_BY_MAINTENANCE } from '@cairn/proto/vocabulary';
import { backends } from '@cairn/test-harness/databases';
import { seededRandom } from '@cairn/test-harness/random';
import { SP_PRIORITY_FLOOR } from '../domain/job-run.js';
import type { WaitingPlaces } from '../domain/maintenance.js';
import { HELD_STATES, type TaskKind } from '../domain/task.js';
import type { TaskRow } from './schema.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

/**
 * The queue's head, checked against its definition: every queued task, passed over when
 * maintenance holds it where it is or its instance has a task held, ranked per tenant (per
 * tenant and priority in the provider's band), at most `perTenant` of each rank group, in the
 * queue's order (the provider's band by priority, then every tenant's first task before anyone's
 * second), first `limit`. The store answers it without ranking the whole queue on SQLite (each
 * tenant's first tasks) and in one ranked statement on MySQL/MariaDB: both must give exactly this.
 */
function expectedHead(all: TaskRow[], limit: number, perTenant: number, waiting?: WaitingPlaces): string[] {
  const held = new Set(
    all.filter((t) => HELD_STATES.includes(t.state as never) && t.instanceId).map((t) => t.instanceId),
  );
  const waits = (t: TaskRow) =>
    waiting !== undefined &&
    waiting.kinds.includes(t.kind as TaskKind) &&
    (waiting.global ||
      waiting.zones.includes(t.zone) ||
      (t.pinnedAgentId !== null && waiting.agentIds.includes(t.pinnedAgentId)));
  const level = (t: TaskRow) => (t.priority >= SP_PRIORITY_FLOOR ? t.priority : -1);
  const byId = (a: TaskRow, b: TaskRow) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const offerable = all
    .filter((t) => t.state === 'queued' && !waits(t) && !(t.instanceId !== null && held.has(t.instanceId)))
    .sort((a, b) => b.priority - a.priority || byId(a, b));
  const rank = new Map<string, number>();
  const seen = new Map<string, number>();
  for (const t of offerable) {
    const group = `${t.tenantId}|${level(t)}`;
    const r = (seen.get(group) ?? 0) + 1;
    seen.set(group, r);
    rank.set(t.id, r);
  }
  const key = (t: TaskRow) => (t.priority >= SP_PRIORITY_FLOOR ? 0 : rank.get(t.id)!);
  return offerable
    .filter((t) => rank.get(t.id)! <= perTenant)
    .sort((a, b) => level(b) - level(a) || key(a) - key(b) || byId(a, b))
    .slice(0, limit)
    .map((t) => t.id);
}

describe.each(backends)("the queue's head (%s)", (backend) => {
  let watching = false;
  const statements: string[] = [];
  const f = storeFixture(backend, { tasksByHand: true, observe: (text) => void (watching && statements.push(text)) });

  it('is every tenant’s first tasks in the queue’s order, whatever the queue holds, over many random queues', async () => {
    const providerId = (await f.provider()).id;
    const template = await f.repos.tasks.create(backupTask({ tenantId: f.providerTenant, providerId }));
    const { id: _id, ...columns } = (await f.repos.tasks.get(template.id))!;
    await f.store.db.deleteFrom('tasks').execute();
    const tenants = ['ten_a', 'ten_b', 'ten_c', 'ten_d', 'ten_e', 'ten_f', 'ten_g'];
    const held = HELD_BY_MAINTENANCE.find((k) => k !== 'backup') as TaskKind;
    let n = 0;
    let checked = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const rand = seededRandom(seed);
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
      await f.store.db.deleteFrom('tasks').execute();
      // One tenant floods, the others queue a few or none; priorities tie often, in both bands.
      const rows: TaskRow[] = [];
      for (const tenantId of tenants) {
        const count = tenantId === 'ten_a' ? 200 + Math.floor(rand() * 200) : Math.floor(rand() * 25);
        for (let i = 0; i < count; i++) {
          const state = rand() < 0.85 ? 'queued' : pick(['dispatched', 'running', 'succeeded', 'failed']);
          rows.push({
            ...columns,
            id: `tsk_${String(++n).padStart(8, '0')}`,
            tenantId,
            state,
            kind: rand() < 0.8 ? 'backup' : held,
            // Instances shared by a few tasks: some queued tasks wait for one held.
            instanceId: rand() < 0.1 ? null : `ins_${tenantId}_${Math.floor(rand() * 40)}`,
            zone: pick(['z1', 'z2']),
            pinnedAgentId: rand() < 0.2 ? pick(['agt_1', 'agt_2']) : null,
            priority: rand() < 0.15 ? pick([50, 60, 90, 99]) : pick([0, 0, 10, 25, 49]),
          });
        }
      }
      for (let i = 0; i < rows.length; i += 200)
        await f.store.db
          .insertInto('tasks')
          .values(rows.slice(i, i + 200))
          .execute();
      const all = await f.store.db.selectFrom('tasks').selectAll().execute();
      const places: (WaitingPlaces | undefined)[] = [
        undefined,
        { kinds: [held], global: false, zones: ['z2'], agentIds: ['agt_1'] },
        { kinds: ['backup', held], global: true, zones: [], agentIds: [] },
      ];
      for (const [limit, perTenant] of [
        [500, 500],
        [50, 50],
        [50, 5],
        [12, 3],
        [7, 1],
        [2000, 2000],
      ] as const) {
        for (const waiting of places) {
          const got = (await f.repos.queue.queueHead(limit, perTenant, waiting)).map((t) => t.id);
          expect(got, `seed ${seed}, limit ${limit}, perTenant ${perTenant}, ${JSON.stringify(waiting)}`).toEqual(
            expectedHead(all, limit, perTenant, waiting),
          );
          checked++;
        }
      }
    }
    expect(checked).toBe(6 * 6 * 3);
  });

  it.runIf(backend === 'sqlite')(
    "reads each tenant's first tasks down the tenants' queue index, never walking the whole queue",
    async () => {
      // Its own queue: three tenants of 30 queued tasks each, more than one read of k takes.
      const providerId = (await f.provider({ name: 'plans' })).id;
      await f.store.db.deleteFrom('tasks').execute();
      for (const tenantId of ['ten_p', 'ten_q', 'ten_r'])
        for (let i = 0; i < 30; i++) await f.repos.tasks.create(backupTask({ tenantId, providerId, priority: i % 3 }));
      statements.length = 0;
      watching = true;
      const head = await f.repos.queue.queueHead(50, 50, {
        kinds: ['prune'],
        global: false,
        zones: ['z2'],
        agentIds: ['agt_1'],
      });
      watching = false;
      expect(head).toHaveLength(50);
      const plans: string[] = [];
      for (const text of statements) {
        const nulls = Array.from(text.matchAll(/\?/g), () => null);
        const plan = await f.store.db.executeQuery<{ detail: string }>(
          CompiledQuery.raw(`explain query plan ${text}`, nulls),
        );
        plans.push(plan.rows.map((r) => r.detail).join('; '));
      }
      // The provider's band ranked from its own range of the queue; the tenants counted, then
      // each one's first tasks read (again, with more of each, while too few were found), by
      // seeks in the partial index of queued tasks.
      expect(plans.length).toBeGreaterThanOrEqual(3);
      expect(plans[0]).toContain('USING INDEX tasks_queue (state=? AND priority>?)');
      for (const plan of plans.slice(1)) {
        expect(plan).toContain('USING COVERING INDEX tasks_tenant_queued (tenant_id>?)');
        expect(plan).not.toMatch(/SCAN tasks|SEARCH tasks USING INDEX tasks_queue/);
      }
      // The instances agents hold a task of: read once a statement, as a list, by state (the held
      // tasks, not the queue), never a lookup per task examined.
      const heldOnce = /(?<!CORRELATED )LIST SUBQUERY \d+; SEARCH busy USING INDEX tasks_queue \(state=\?\)/;
      expect(plans[0]).toMatch(heldOnce);
      for (const plan of plans.slice(2)) {
        expect(plan).toMatch(heldOnce);
        expect(plan).toContain('USING INDEX tasks_tenant_queued (tenant_id=? AND priority<?)');
        expect(plan).toContain('SEARCH chosen USING INDEX sqlite_autoindex_tasks_1 (id=?)');
      }
    },
  );
});
