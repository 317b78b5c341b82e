import SQLite from 'better-sqlite3';
import { Migrator, NO_MIGRATIONS, sql, type Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { migrate, migrationsAt, storeReady, transact } from './db.js';
import { systemClock } from '../clock.js';
import { storeFixture } from '../testing/store-fixture.js';
import { NamedRowsStatement, rowBuilder } from './sqlite-rows.js';

describe.each(backends)('store (%s)', (backend) => {
  // Migrated by the tests themselves.
  const f = storeFixture(backend, { migrate: false });

  it('is not ready before its migrations ran, and ready after', async () => {
    expect(await storeReady(f.store.db)).toBe(false);
    await migrate(f.store.db);
    expect(await storeReady(f.store.db)).toBe(true);
  });

  it('drops the old job-run counter, and an earlier version refuses a database migrated past it', async () => {
    const columns = (await f.store.db.introspection.getTables()).find((t) => t.name === 'backup_job_runs')!.columns;
    expect(columns.map((c: { name: string }) => c.name)).toContain('started_at');
    expect(columns.map((c: { name: string }) => c.name)).not.toContain('outstanding');
    // What an earlier version sees: a migration it does not know has run. It must not start.
    await sql`insert into kysely_migration (name, timestamp) values ('9999-from-a-later-version', '2026-12-03T00:00:00.000Z')`.execute(
      f.store.db,
    );
    await expect(migrate(f.store.db)).rejects.toThrow(/9999-from-a-later-version is missing/);
    await sql`delete from kysely_migration where name = '9999-from-a-later-version'`.execute(f.store.db);
    await migrate(f.store.db);
  });

  it('undoes every migration, newest first, and applies them all again to the same schema', async () => {
    await migrate(f.store.db);
    const schema = async () =>
      (await f.store.db.introspection.getTables())
        .map((t) => `${t.name}(${t.columns.map((c) => c.name).join(',')})`)
        .sort();
    const latest = await schema();
    const migrator = new Migrator({
      db: f.store.db,
      provider: { getMigrations: () => Promise.resolve(migrationsAt(systemClock)) },
    });
    const down = await migrator.migrateTo(NO_MIGRATIONS);
    expect(down.error).toBeUndefined();
    expect(down.results?.every((r) => r.status === 'Success')).toBe(true);
    expect(down.results).toHaveLength(Object.keys(migrationsAt(systemClock)).length);
    expect(await schema()).toEqual([]);
    await migrate(f.store.db);
    expect(await schema()).toEqual(latest);
  });
});

describe('the SQLite store', () => {
  const f = storeFixture('sqlite', { migrate: false });

  it('runs one statement again and again: a select read whole, streamed, or left half-read', async () => {
    const db = f.store.db;
    await sql`create table scratch (id integer primary key, n integer not null)`.execute(db);
    for (let i = 1; i <= 5; i++) await sql`insert into scratch values (${i}, ${i * 10})`.execute(db);
    await sql`update scratch set n = n + 1 where id = ${3}`.execute(db);
    const scratch = db as unknown as Kysely<{ scratch: { id: number; n: number } }>;
    const select = () => scratch.selectFrom('scratch').select(['id', 'n']).where('id', '>=', 1).orderBy('id');
    const streamed: number[] = [];
    for await (const row of select().stream(1)) streamed.push(row.n);
    expect(streamed).toEqual([10, 20, 31, 40, 50]);
    // Left after its first row: the statement is released and runs again.
    for await (const row of select().stream(1)) {
      expect(row.n).toBe(10);
      break;
    }
    expect((await select().execute()).map((r) => r.n)).toEqual([10, 20, 31, 40, 50]);
    await sql`update scratch set n = n + 1 where id = ${3}`.execute(db);
    expect((await select().execute()).map((r) => r.n)).toEqual([10, 20, 32, 40, 50]);
  });

  it('names the columns of every row as CamelCasePlugin would, read whole or streamed, and writes report what they changed', async () => {
    const db = f.store.db;
    await sql`create table scratch_rows (id integer primary key, created_at integer, error_code text, s3_key text, payload blob)`.execute(
      db,
    );
    const scratch = db as unknown as Kysely<{
      scratchRows: {
        id: number;
        createdAt: number | null;
        errorCode: string | null;
        s3Key: string | null;
        payload: Buffer | null;
      };
    }>;
    const inserted = await scratch
      .insertInto('scratchRows')
      .values([
        { id: 1, createdAt: 5, errorCode: 'x', s3Key: 'k', payload: Buffer.from([1, 2]) },
        { id: 2, createdAt: null, errorCode: null, s3Key: null, payload: null },
      ])
      .executeTakeFirst();
    expect(Number(inserted.numInsertedOrUpdatedRows)).toBe(2);
    expect(Number(inserted.insertId)).toBe(2);
    const expected = [
      { id: 1, createdAt: 5, errorCode: 'x', s3Key: 'k', payload: Buffer.from([1, 2]) },
      { id: 2, createdAt: null, errorCode: null, s3Key: null, payload: null },
    ];
    const rows = await scratch.selectFrom('scratchRows').selectAll().orderBy('id').execute();
    expect(rows).toEqual(expected);
    // In the table's column order, each row its own object.
    expect(rows.map((r) => Object.keys(r))).toEqual(
      Array(2).fill(['id', 'createdAt', 'errorCode', 's3Key', 'payload']),
    );
    expect(rows[0]).not.toBe(rows[1]);
    const streamed = [];
    for await (const row of scratch.selectFrom('scratchRows').selectAll().orderBy('id').stream(1)) streamed.push(row);
    expect(streamed).toEqual(expected);
    // Raw SQL, aliases: named alike; a later column of the same name wins, as better-sqlite3 has it.
    const raw = await sql<
      Record<string, unknown>
    >`select error_code as first_error, 1 as dup, 2 as dup from scratch_rows where id = 1`.execute(db);
    expect(raw.rows).toEqual([{ firstError: 'x', dup: 2 }]);
    const updated = await scratch
      .updateTable('scratchRows')
      .set({ errorCode: 'y' })
      .where('id', '<=', 2)
      .executeTakeFirst();
    expect(Number(updated.numUpdatedRows)).toBe(2);
  });

  it('reads a select-all prepared before a migration added a column with that column', async () => {
    const db = f.store.db;
    await sql`create table scratch_schema (id integer primary key, old_name text)`.execute(db);
    await sql`insert into scratch_schema values (1, 'a')`.execute(db);
    const all = () => sql<Record<string, unknown>>`select * from scratch_schema`.execute(db);
    expect((await all()).rows).toEqual([{ id: 1, oldName: 'a' }]);
    await sql`alter table scratch_schema add column new_name text default 'b'`.execute(db);
    expect((await all()).rows).toEqual([{ id: 1, oldName: 'a', newName: 'b' }]);
  });

  it('keeps a column named __proto__ as a field, not as the row’s prototype', () => {
    const database = new SQLite(':memory:');
    try {
      const stmt = new NamedRowsStatement(database.prepare('select 1 as "__proto__", 2 as other'), (c) => c);
      const row = stmt.all([])[0]!;
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe(1);
      expect(row.other).toBe(2);
    } finally {
      database.close();
    }
  });

  it('makes one row builder per column list, and keeps a bounded number of them', () => {
    const database = new SQLite(':memory:');
    try {
      // Two statements of different text and the same columns (an `in (…)` of another size).
      const rows = [1, 2].map((n) => {
        const stmt = new NamedRowsStatement(
          database.prepare(`select 1 as a, 2 as b where 1 in (${Array(n).fill('?').join(', ')})`),
          (c) => c,
        );
        return stmt.all(Array(n).fill(1))[0]!;
      });
      expect(rows).toEqual([
        { a: 1, b: 2 },
        { a: 1, b: 2 },
      ]);
      const first = rowBuilder(['a', 'b']);
      expect(rowBuilder(['a', 'b'])).toBe(first);
      expect(rowBuilder(['b', 'a'])).not.toBe(first);
      expect(rowBuilder(['b', 'a'])(['x', 'y'])).toEqual({ b: 'x', a: 'y' });
      for (let i = 0; i < 600; i++) rowBuilder([`c${i}`]);
      // Dropped as the least recently made, then made again: an equal function, not the same one.
      const again = rowBuilder(['a', 'b']);
      expect(again).not.toBe(first);
      expect(again([3, 4])).toEqual({ a: 3, b: 4 });
    } finally {
      database.close();
    }
  });
});

// SQLite has one writer and no deadlocks; this needs InnoDB, so it exists only when MySQL does.
describe.runIf(backends.includes('mysql'))('store transactions on MySQL', () => {
  // Migrated by the tests themselves.
  const f = storeFixture('mysql', { migrate: false });

  it('runs a transaction again when the database picks it as a deadlock victim', async () => {
    await sql`create table scratch (id int primary key, n int not null)`.execute(f.store.db);
    await sql`insert into scratch values (1, 0), (2, 0)`.execute(f.store.db);
    let firstHasRow1!: () => void;
    let secondHasRow2!: () => void;
    const row1Locked = new Promise<void>((r) => (firstHasRow1 = r));
    const row2Locked = new Promise<void>((r) => (secondHasRow2 = r));
    let runs = 0;
    const bump = (id: number) => sql`update scratch set n = n + 1 where id = ${id}`;
    // Opposite lock orders: InnoDB must abort one side; transact() must run it again.
    const first = transact(f.store.db, async (trx) => {
      runs++;
      await bump(1).execute(trx);
      firstHasRow1();
      await row2Locked;
      await bump(2).execute(trx);
    });
    const second = transact(f.store.db, async (trx) => {
      runs++;
      await row1Locked;
      await bump(2).execute(trx);
      secondHasRow2();
      await bump(1).execute(trx);
    });
    await Promise.all([first, second]);
    expect(runs).toBe(3);
    const rows = await sql<{ id: number; n: number }>`select id, n from scratch order by id`.execute(f.store.db);
    expect(rows.rows.map((r) => Number(r.n))).toEqual([2, 2]);
  });

  it('hands out event ids in commit order: a writer waits for the event clock until the earlier one commits', async () => {
    await migrate(f.store.db);
    const event = (message: string) => ({ tenantId: 't', type: 'test', at: Date.now(), message });
    let releaseFirst!: () => void;
    const firstMayCommit = new Promise<void>((r) => (releaseFirst = r));
    let firstInserted!: () => void;
    const firstHasInserted = new Promise<void>((r) => (firstInserted = r));
    const order: string[] = [];
    const write = (name: string, hold?: Promise<void>) =>
      transact(f.store.db, async (trx) => {
        await trx
          .updateTable('eventClock')
          .set((eb) => ({ ticks: eb('ticks', '+', 1) }))
          .where('id', '=', 1)
          .execute();
        const r = await trx.insertInto('events').values(event(name)).executeTakeFirst();
        if (hold) {
          firstInserted();
          await hold;
        }
        order.push(name);
        return Number(r.insertId);
      });
    const first = write('first', firstMayCommit);
    await firstHasInserted;
    const second = write('second');
    // The second writer is parked on the clock row while the first is open...
    await new Promise((r) => setTimeout(r, 200));
    expect(order).toEqual([]);
    releaseFirst();
    const [a, b] = await Promise.all([first, second]);
    // ...so it commits after the first, with the larger id.
    expect(order).toEqual(['first', 'second']);
    expect(b).toBeGreaterThan(a);
  });
});
