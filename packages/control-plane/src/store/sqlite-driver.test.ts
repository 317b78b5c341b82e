import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';

describe.runIf(backends.includes('sqlite'))('a SQLite store file: a reader beside the writer', () => {
  /** Every statement the store ran, in order, while `watching`. */
  const statements: string[] = [];
  let watching = false;
  const f = storeFixture('sqlite', { observe: (text) => watching && statements.push(text) });
  const names = async () => (await f.store.db.selectFrom('tenants').select('name').execute()).map((r) => r.name);
  const tenant = (name: string) => ({ id: `ten_${name}`, name, createdAt: 1 });

  it('answers a read outside a transaction while one holds the writer, with what is committed only', async () => {
    const trx = await f.store.db.startTransaction().execute();
    try {
      await trx.insertInto('tenants').values(tenant('uncommitted')).execute();
      // Inside the transaction: its own write. Outside: not yet, and not waiting for it (on one
      // connection this read would wait for the commit below, which waits for it: a deadlock).
      expect((await trx.selectFrom('tenants').select('name').execute()).map((r) => r.name)).toContain('uncommitted');
      expect(await names()).not.toContain('uncommitted');
      await trx.commit().execute();
    } catch (err) {
      await trx.rollback().execute();
      throw err;
    }
    expect(await names()).toContain('uncommitted');
  });

  it('runs a statement that writes on the writer, and waits for the writer as it must', async () => {
    const trx = await f.store.db.startTransaction().execute();
    // A write that begins like a query: SQLite says it writes, so it goes to the writer, after the
    // transaction holding it.
    const write =
      sql`with n(name) as (select 'by-cte') insert into tenants (id, name, created_at) select 'ten_cte', name, 1 from n`.execute(
        f.store.db,
      );
    let written = false;
    void write.then(() => (written = true));
    await new Promise((r) => setImmediate(r));
    expect(written).toBe(false);
    await trx.commit().execute();
    await write;
    expect(await names()).toContain('by-cte');
  });

  it('keeps every statement of a transaction on the writer, and the log sees them all', async () => {
    statements.length = 0;
    watching = true;
    try {
      await f.store.db.transaction().execute(async (trx) => {
        await trx.insertInto('tenants').values(tenant('in-trx')).execute();
        // A read in the transaction sees its own write: it ran on the writer.
        const seen = await trx.selectFrom('tenants').select('name').where('name', '=', 'in-trx').execute();
        expect(seen).toHaveLength(1);
      });
    } finally {
      watching = false;
    }
    expect(statements.map((s) => s.split(' ')[0])).toEqual(['begin', 'insert', 'select', 'commit']);
  });

  it('runs a read outside a transaction on the writer while none is open there, on the reader while one is', async () => {
    // A temporary table belongs to the connection that made it: here the writer (a statement that
    // writes). A read of it succeeds on the writer and fails on the reader, which has none.
    await sql`create temp table on_the_writer (x integer)`.execute(f.store.db);
    try {
      const count = () => sql<{ n: number }>`select count(*) as n from on_the_writer`.execute(f.store.db);
      expect((await count()).rows).toEqual([{ n: 0 }]);
      const trx = await f.store.db.startTransaction().execute();
      try {
        await trx.insertInto('tenants').values(tenant('holding-the-writer')).execute();
        await expect(count()).rejects.toThrow(/no such table: on_the_writer/);
        // The transaction's uncommitted row is not seen outside it, as before.
        expect(await names()).not.toContain('holding-the-writer');
      } finally {
        await trx.rollback().execute();
      }
      expect((await count()).rows).toEqual([{ n: 0 }]);
    } finally {
      await sql`drop table temp.on_the_writer`.execute(f.store.db);
    }
  });
});
