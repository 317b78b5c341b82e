import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';
import { template } from './compiled.js';
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
