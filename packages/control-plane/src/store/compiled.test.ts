import { describe, expect, it, vi } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';
import { sql } from 'kysely';
import { insertRows, RowsTemplate, ShapedTemplate, template, upsert } from './compiled.js';
import { inRequestTransaction, scopedDb } from './request-scope.js';

const byName = template((db, p: { name: string }) =>
  db.selectFrom('tenants').select(['id', 'name', 'createdAt']).where('name', '=', p.name),
);
const since = template((db, p: { after: number; limit: number }) =>
  db
    .selectFrom('tenants')
    .select(['name'])
    .where('createdAt', '>', p.after)
    // A constant the builder puts in stays in its place among the parameters.
    .where('name', '!=', 'never-a-tenant')
    .orderBy('createdAt')
    .limit(p.limit),
);
const rename = template((db, p: { id: string; name: string }) =>
  db.updateTable('tenants').set({ name: p.name }).where('id', '=', p.id),
);

describe.each(backends)('query templates (%s)', (backend) => {
  const f = storeFixture(backend);

  it('compile once and answer each run with its own values, in camel case', async () => {
    const db = f.store.db;
    for (let i = 1; i <= 5; i++)
      await db
        .insertInto('tenants')
        .values({ id: `tnt_t${i}`, name: `t${i}`, createdAt: 1000 + i })
        .execute();
    expect(await byName.first(db, { name: 't3' })).toEqual({ id: 'tnt_t3', name: 't3', createdAt: 1003 });
    expect(await byName.first(db, { name: 't4' })).toEqual({ id: 'tnt_t4', name: 't4', createdAt: 1004 });
    expect(await byName.first(db, { name: 'nobody' })).toBeUndefined();
    expect((await since.all(db, { after: 1002, limit: 2 })).map((r) => r.name)).toEqual(['t3', 't4']);
    expect((await since.all(db, { after: 1000, limit: 3 })).map((r) => r.name)).toEqual(['t1', 't2', 't3']);
    const r = await rename.run(db, { id: 'tnt_t5', name: 't5-renamed' });
    expect(Number(r.numAffectedRows)).toBe(1);
    expect(await byName.first(db, { name: 't5-renamed' })).toMatchObject({ id: 'tnt_t5' });
  });

  it("run in the request's transaction through the scoped handle, and roll back with it", async () => {
    const scoped = scopedDb(f.store.db);
    await f.store.db.insertInto('tenants').values({ id: 'tnt_tx', name: 'tx', createdAt: 1 }).execute();
    const committed = await inRequestTransaction(f.store.db, async () => {
      await rename.run(scoped, { id: 'tnt_tx', name: 'tx-inside' });
      // Read back inside: the transaction's own write.
      expect(await byName.first(scoped, { name: 'tx-inside' })).toMatchObject({ id: 'tnt_tx' });
      return false;
    });
    expect(committed).toBe(false);
    expect(await byName.first(f.store.db, { name: 'tx' })).toMatchObject({ id: 'tnt_tx' });
    expect(await byName.first(f.store.db, { name: 'tx-inside' })).toBeUndefined();
  });
});

/** Tenants named among `n` names: one compiled text per count of names. */
const named = new ShapedTemplate<number, Record<string, unknown>, { name: string }>(String, (db, p, n) =>
  db
    .selectFrom('tenants')
    .select('name')
    .where(
      'name',
      'in',
      Array.from({ length: n }, (_, i) => p[`name:${i}`] as string),
    )
    .orderBy('name'),
);

describe.each(backends)('shaped templates and compiled inserts (%s)', (backend) => {
  /** Every statement the store ran while `watching`. */
  const statements: string[] = [];
  let watching = false;
  const f = storeFixture(backend, { observe: (text) => watching && statements.push(text) });
  // The fixture's store lives for the whole file: each case reads the tenants it made.
  const names = async (prefix: string) =>
    (
      await f.store.db
        .selectFrom('tenants')
        .select('name')
        .where('name', 'like', `${prefix}%`)
        .orderBy('name')
        .execute()
    ).map((r) => r.name);

  it('insert one row and many alike, and skip a row a unique key holds only when asked', async () => {
    const db = f.store.db;
    await insertRows(db, 'tenants', [{ id: 'tnt_r1', name: 'r1', createdAt: 1 }]);
    const three = [2, 3, 4].map((i) => ({ id: `tnt_r${i}`, name: `r${i}`, createdAt: i }));
    await insertRows(db, 'tenants', three);
    expect(await names('r')).toEqual(['r1', 'r2', 'r3', 'r4']);
    // The same shape again, with new values.
    await insertRows(db, 'tenants', [{ id: 'tnt_r5', name: 'r5', createdAt: 5 }]);
    // A duplicate fails the whole insert unless asked to skip it; the skip keeps the other row.
    const clash = [
      { id: 'tnt_r1', name: 'r1-again', createdAt: 9 },
      { id: 'tnt_r6', name: 'r6', createdAt: 6 },
    ];
    await expect(insertRows(db, 'tenants', clash)).rejects.toThrow();
    expect(await names('r')).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
    await insertRows(db, 'tenants', clash, { orIgnore: true });
    expect(await names('r')).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    expect(await db.selectFrom('tenants').select('createdAt').where('id', '=', 'tnt_r6').executeTakeFirst()).toEqual({
      createdAt: 6,
    });
  });

  it('insert rows not named alike, and more rows than a compiled shape holds, as Kysely does', async () => {
    const db = f.store.db;
    await insertRows(db, 'tenants', [
      { id: 'tnt_ua', name: 'u-a', createdAt: 1 },
      { name: 'u-b', createdAt: 2, id: 'tnt_ub' },
    ]);
    const many = Array.from({ length: 20 }, (_, i) => ({ id: `tnt_um${i}`, name: `u-m${i}`, createdAt: i }));
    await insertRows(db, 'tenants', many);
    expect((await names('u-')).length).toBe(22);
  });

  it("insert a batch larger than a compiled shape as one row's tuple repeated: the text Kysely compiles, each row its own values", async () => {
    const db = f.store.db;
    // Keys in another order than the columns' first appearance elsewhere: the tuple binds by name.
    const batch = Array.from({ length: 30 }, (_, i) => ({
      createdAt: 1000 + i,
      name: `b-${String(i).padStart(2, '0')}`,
      id: `tnt_b${i}`,
    }));
    statements.length = 0;
    watching = true;
    try {
      await insertRows(db, 'tenants', batch);
    } finally {
      watching = false;
    }
    expect(statements).toEqual([db.insertInto('tenants').values(batch).compile().sql]);
    const stored = await db
      .selectFrom('tenants')
      .select(['id', 'name', 'createdAt'])
      .where('name', 'like', 'b-%')
      .orderBy('name')
      .execute();
    expect(stored).toEqual(batch.map(({ id, name, createdAt }) => ({ id, name, createdAt })));
    // Another batch of the same columns (of another size) is not built by Kysely again: its shape is kept.
    const other = batch
      .slice(0, 17)
      .map((r, i) => ({ ...r, id: `tnt_c${i}`, name: `c-${String(i).padStart(2, '0')}` }));
    const expected = db.insertInto('tenants').values(other).compile().sql;
    const build = vi.spyOn(db, 'insertInto');
    statements.length = 0;
    watching = true;
    try {
      await insertRows(db, 'tenants', other);
      expect(build).not.toHaveBeenCalled();
    } finally {
      watching = false;
      build.mockRestore();
    }
    expect(statements).toEqual([expected]);
    expect(await names('c-')).toEqual(other.map((r) => r.name));
    // Skipping what a unique key holds, in a batch: the clashing row keeps its first values.
    const more = Array.from({ length: 12 }, (_, i) => ({ id: `tnt_b${i + 29}`, name: `b-x${i + 29}`, createdAt: i }));
    await expect(insertRows(db, 'tenants', more)).rejects.toThrow();
    await insertRows(db, 'tenants', more, { orIgnore: true });
    const after = await db.selectFrom('tenants').select(['id', 'name']).where('name', 'like', 'b-%').execute();
    expect(after).toHaveLength(30 + 11);
    expect(after.find((r) => r.id === 'tnt_b29')?.name).toBe('b-29');
  });

  it('compile once per shape and answer each shape, past the shapes kept, with its own values', async () => {
    const db = f.store.db;
    const all = Array.from({ length: 70 }, (_, i) => ({
      id: `tnt_s${i}`,
      name: `s${String(i).padStart(2, '0')}`,
      createdAt: i,
    }));
    for (const row of all) await insertRows(db, 'tenants', [row]);
    // 70 shapes: the first 64 are compiled and kept, the rest built each time; all answer alike.
    for (const n of [1, 2, 70, 3, 1, 69, 2]) {
      const params = Object.fromEntries(all.slice(0, n).map((r, i) => [`name:${i}`, r.name]));
      const rows = (await named.run(db, n, params)).rows;
      expect(rows.map((r) => r.name)).toEqual(all.slice(0, n).map((r) => r.name));
    }
    for (let n = 4; n <= 68; n++) {
      const params = Object.fromEntries(all.slice(5, 5 + n).map((r, i) => [`name:${i}`, r.name]));
      expect((await named.run(db, n, params)).rows.length).toBe(Math.min(n, 65));
    }
  });
});

describe.each(backends)('statements of rows (%s)', (backend) => {
  /** Every statement the store ran while `watching`. */
  const statements: string[] = [];
  let watching = false;
  const f = storeFixture(backend, { observe: (text) => watching && statements.push(text) });
  type Shape = { above: number; marked: boolean };
  /** Rows of (n, label) as a union of selects, those above a bound kept; `marked` breaks the repeat. */
  const build = (
    db: Parameters<ConstructorParameters<typeof RowsTemplate<Shape>>[2]>[0],
    shape: Shape,
    rows: readonly (readonly unknown[])[],
  ) => {
    const union = sql.join(
      rows.map((r, i) =>
        i === 0 ? sql`select ${r[0]} as ${sql.ref('n')}, ${r[1]} as ${sql.ref('label')}` : sql`select ${r[0]}, ${r[1]}`,
      ),
      sql` union all `,
    );
    // A text that changes with the count of rows, not only by one row's part each: never repeated.
    const mark = shape.marked ? sql.raw(rows.length % 2 === 0 ? ' /* even */' : '') : sql``;
    return sql<{
      n: number;
      label: string;
    }>`select ${sql.ref('v.n')}, ${sql.ref('v.label')} from (${union}) as ${sql.table('v')} where ${sql.ref('v.n')} > ${shape.above}${mark} order by ${sql.ref('v.n')}`.compile(
      db,
    );
  };
  let built = 0;
  const rowsOf = new RowsTemplate<Shape>(
    (s) => `${s.above}|${s.marked}`,
    () => 2,
    (db, shape, rows) => (built++, build(db, shape, rows)),
  );
  const rows = (n: number) => Array.from({ length: n }, (_, i) => [i + 1, `r${i + 1} ${'é'.repeat(i % 3)}`]);

  it('are compiled once per shape and written for any count of rows: the text Kysely compiles, each row its own values', async () => {
    const db = f.store.db;
    for (const n of [2, 3, 7, 40, 2, 101]) {
      const shape = { above: n % 5, marked: false };
      statements.length = 0;
      watching = true;
      let answer;
      try {
        answer = await rowsOf.run(db, shape, rows(n));
      } finally {
        watching = false;
      }
      expect(statements).toEqual([build(db, shape, rows(n)).sql]);
      expect(answer.rows).toEqual(
        rows(n)
          .filter(([k]) => Number(k) > shape.above)
          .map(([k, label]) => ({ n: k, label })),
      );
    }
    // Learnt once per shape (two, three and five rows): five shapes, however many runs.
    const learnt = built;
    await rowsOf.run(db, { above: 2, marked: false }, rows(9));
    expect(built).toBe(learnt);
    expect(rowsOf.repeatedFor(db, { above: 2, marked: false })).toBeDefined();
  });

  it('are built anew each time when the text does not repeat one part per row', async () => {
    const db = f.store.db;
    const shape = { above: 0, marked: true };
    expect(rowsOf.repeatedFor(db, shape)).toBeUndefined();
    for (const n of [2, 3, 4, 11]) {
      const before = built;
      statements.length = 0;
      watching = true;
      try {
        const answer = await rowsOf.run(db, shape, rows(n));
        expect(answer.rows.map((r) => (r as { n: number }).n)).toEqual(rows(n).map(([k]) => k));
      } finally {
        watching = false;
      }
      expect(statements).toEqual([build(db, shape, rows(n)).sql]);
      expect(built).toBe(before + 1);
    }
  });
});

describe.each(backends)('compiled upserts (%s)', (backend) => {
  const f = storeFixture(backend);
  const counts = async () =>
    (await f.store.db.selectFrom('tenantCounts').selectAll().orderBy('tenantId').orderBy('quota').execute()).map(
      (r) => `${r.tenantId}/${r.quota}=${Number(r.used)}`,
    );
  const move = (tenantId: string, quota: string, used: number) =>
    upsert(f.store.db, 'tenantCounts', { tenantId, quota, used }, ['tenantId', 'quota'], { used: 'add' });

  it('add a delta to the row there, or make it at the delta, each row by its own key', async () => {
    await move('tnt_a', 'jobs', 3);
    await move('tnt_a', 'jobs', 4);
    await move('tnt_a', 'instances', -2);
    await move('tnt_b', 'jobs', 5);
    await move('tnt_a', 'jobs', -1);
    expect(await counts()).toEqual(['tnt_a/instances=-2', 'tnt_a/jobs=6', 'tnt_b/jobs=5']);
  });

  it('set the values given, or keep the row as it is, and are compiled once per shape', async () => {
    const executor = Object.getPrototypeOf(f.store.db.getExecutor()) as { compileQuery: (...a: never[]) => unknown };
    const compiles = vi.spyOn(executor, 'compileQuery');
    const quota = (tenantId: string, quotaLimit: number, updatedAt: number) =>
      upsert(f.store.db, 'tenantQuotas', { tenantId, quota: 'jobs', quotaLimit, updatedAt }, ['tenantId', 'quota'], {
        quotaLimit: 'set',
        updatedAt: 'set',
      });
    const touch = (tenantId: string) =>
      upsert(
        f.store.db,
        'tenantQuotas',
        { tenantId, quota: 'jobs', quotaLimit: 0, updatedAt: 0 },
        ['tenantId', 'quota'],
        {
          quotaLimit: 'keep',
        },
      );
    try {
      await quota('tnt_q', 10, 100);
      await quota('tnt_q', 20, 200);
      await touch('tnt_q');
      await touch('tnt_r');
      // Two shapes, each compiled by its first run; the later runs compile nothing.
      expect(compiles).toHaveBeenCalledTimes(2);
      await quota('tnt_q', 30, 300);
      await touch('tnt_q');
      expect(compiles).toHaveBeenCalledTimes(2);
    } finally {
      compiles.mockRestore();
    }
    const rows = await f.store.db.selectFrom('tenantQuotas').selectAll().orderBy('tenantId').execute();
    expect(rows.map((r) => [r.tenantId, Number(r.quotaLimit), Number(r.updatedAt)])).toEqual([
      ['tnt_q', 30, 300],
      ['tnt_r', 0, 0],
    ]);
  });

  it('refuse a column to set or add with no value, and write nothing', async () => {
    const before = await counts();
    await expect(
      upsert(
        f.store.db,
        'tenantCounts',
        { tenantId: 'tnt_x', quota: 'jobs', used: undefined as never },
        ['tenantId', 'quota'],
        {
          used: 'add',
        },
      ),
    ).rejects.toThrow("upsert of tenantCounts: 'used' is to be add but has no value");
    expect(await counts()).toEqual(before);
  });
});

describe('a query template that does not bind its parameters as values', () => {
  const f = storeFixture('sqlite');

  it('is refused when it branches on a parameter', async () => {
    const branching = template((db, p: { name?: string }) => {
      let q = db.selectFrom('tenants').select('id');
      if (p.name === undefined) q = q.where('name', '=', 'x');
      return q;
    });
    await expect(branching.all(f.store.db, {})).rejects.toThrow(/parameter 'name' is read but not bound as a value/);
  });

  it('is refused when it makes text of a parameter', async () => {
    const texty = template((db, p: { name: string }) =>
      db.selectFrom('tenants').select('id').where('name', '=', `prefix-${p.name}`),
    );
    await expect(texty.all(f.store.db, { name: 'a' })).rejects.toThrow(/must be bound as a value, not used as text/);
  });
});
