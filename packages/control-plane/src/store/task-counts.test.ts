import { sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import * as taskCountsMigration from './migrations/0044-task-counts.js';
import { transact } from './db.js';
import type { TaskRow } from './schema.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';
import { taskCountsDrift } from '../testing/task-counts.js';

/*
 * `cairn_tasks` reports the tasks per state and kind. The ended ones, most of the store, are kept
 * as counts moved by the transactions that end and forget them; the others are counted. (Every
 * store fixture also checks the kept counts against the tasks as it closes, so each test that ends
 * tasks some way checks that the way counts them.)
 */
describe.each(backends)('tasks per state and kind, the ended ones kept (%s)', (backend) => {
  let watching = false;
  const statements: string[] = [];
  const f = storeFixture(backend, { observe: (text) => void (watching && statements.push(text)) });
  const { tasks } = f.repos;
  let providerId: string;

  beforeAll(async () => {
    providerId = (await f.provider()).id;
  });

  const task = (kind: 'backup' | 'sync' = 'backup') => ({
    ...backupTask({ tenantId: f.providerTenant, providerId }),
    kind,
  });
  const refusal = { code: 'maintenance', message: 'not now' };
  const sorted = (rows: { state: string; kind: string; n: number }[]) =>
    rows.map((r) => `${r.state} ${r.kind} ${r.n}`).sort();
  /** Every task of the store counted, per state and kind. */
  const counted = async () => {
    const { rows } = await sql<{ state: string; kind: string; n: number }>`
      select state, kind, count(*) as n from tasks group by state, kind`.execute(f.store.db);
    return sorted(rows.map((r) => ({ ...r, n: Number(r.n) })));
  };

  it('answers as a count of the tasks would, queued and ended alike', async () => {
    const made: TaskRow[] = [];
    for (let i = 0; i < 6; i++) made.push(await tasks.create(task(i % 2 === 0 ? 'backup' : 'sync')));
    for (const t of made.slice(0, 3)) await tasks.requestCancel(t.id);
    await tasks.createRefused(task(), refusal);
    await transact(f.store.db, (trx) => tasks.failQueued(trx, made[3]!, refusal));
    const reported = sorted(await tasks.countsByStateAndKind());
    expect(reported).toEqual(await counted());
    expect(reported).toEqual(
      expect.arrayContaining(['cancelled backup 2', 'cancelled sync 1', 'failed backup 1', 'failed sync 1']),
    );
    expect(reported.some((r) => r.startsWith('queued '))).toBe(true);
  });

  it('writes the ends of one transaction once per state and kind, as it commits', async () => {
    statements.length = 0;
    watching = true;
    await transact(f.store.db, async (trx) => {
      for (let i = 0; i < 5; i++) await tasks.createRefused(task('backup'), refusal, undefined, trx);
      for (let i = 0; i < 3; i++) await tasks.createRefused(task('sync'), refusal, undefined, trx);
    });
    watching = false;
    const moves = statements.filter((s) => /task_counts/.test(s));
    expect(moves).toHaveLength(2);
    // With the events, after the last task's insert.
    const lastTask = statements.findLastIndex((s) => /^\s*insert into [`"]tasks[`"]/i.test(s));
    expect(lastTask).toBeGreaterThan(-1);
    expect(statements.indexOf(moves[0]!)).toBeGreaterThan(lastTask);
    expect(await taskCountsDrift(f.store.db)).toEqual([]);
  });

  it('ends made at once, through two replicas on MySQL/MariaDB, are each counted once', async () => {
    const other = backend === 'mysql' ? await f.replica() : f.repos;
    const queued: TaskRow[] = [];
    for (let i = 0; i < 24; i++) queued.push(await tasks.create(task()));
    const before = await counted();
    await Promise.all(
      queued.map((t, i) =>
        i % 3 === 0
          ? (i % 2 === 0 ? tasks : other.tasks).createRefused(task(), refusal)
          : (i % 2 === 0 ? tasks : other.tasks).requestCancel(t.id),
      ),
    );
    const after = await counted();
    expect(after).not.toEqual(before);
    expect(await taskCountsDrift(f.store.db)).toEqual([]);
    expect(sorted(await tasks.countsByStateAndKind())).toEqual(after);
  });

  it('migration 0044 counts the ended tasks as they stand', async () => {
    const before = await counted();
    expect(before.some((r) => r.startsWith('cancelled ') || r.startsWith('failed '))).toBe(true);
    const db = f.store.db as unknown as Kysely<unknown>;
    await taskCountsMigration.down(db);
    await taskCountsMigration.up(db);
    expect(await taskCountsDrift(f.store.db)).toEqual([]);
    expect(sorted(await tasks.countsByStateAndKind())).toEqual(before);
  });
});
