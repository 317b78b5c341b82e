import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';
import { openStore, transact } from './db.js';
import { inRequestTransaction, scopedDb } from './request-scope.js';
import { PROBED_TABLES } from './schedule-repository.js';
import { writtenTable } from './write-watch.js';

describe('writtenTable', () => {
  it.each([
    ['insert into `user_schedules` (`a`) values (?)', 'user_schedules'],
    ['insert into "events" ("a") values (?)', 'events'],
    ['insert or ignore into "events" ("a") values (?)', 'events'],
    ['insert ignore into `events` (`a`) values (?)', 'events'],
    ['INSERT INTO offerings (a) VALUES (1)', 'offerings'],
    ['replace into `x` values (1)', 'x'],
    ['update `event_clock` set `ticks` = `ticks` + ? where `id` = ?', 'event_clock'],
    ['  update "offerings" set "sla" = ?', 'offerings'],
    ['delete from "backup_job_schedules" where "id" = ?', 'backup_job_schedules'],
    ['select * from `user_schedules`', undefined],
    ['with t as (select 1) select * from t', undefined],
    ['begin', undefined],
    ['commit', undefined],
    ['savepoint "request"', undefined],
  ])('%s → %s', (text, table) => {
    expect(writtenTable(text)).toBe(table);
  });
});

// The count a scheduler compares moves once a write to a probed table has committed, never
// before, and not for a write rolled back or to another table.
describe.each(backends)('the store counts its committed writes by table (%s)', (backend) => {
  const f = storeFixture(backend);
  const version = () => f.store.writes.version(PROBED_TABLES);
  // Inside a request transaction, as the repositories write: that transaction; else the pool.
  const tickClock = () =>
    scopedDb(f.store.db)
      .updateTable('eventClock')
      .set((eb) => ({ ticks: eb('ticks', '+', 1) }))
      .where('id', '=', 1)
      .execute();

  it('counts a statement outside a transaction once it ran', async () => {
    const before = version();
    await tickClock();
    expect(version()).toBe(before + 1);
  });

  it('counts a transaction at its commit, not at its statements', async () => {
    const before = version();
    let during = -1;
    await transact(f.store.db, async (trx) => {
      await trx
        .updateTable('eventClock')
        .set((eb) => ({ ticks: eb('ticks', '+', 1) }))
        .where('id', '=', 1)
        .execute();
      during = version();
    });
    expect(during).toBe(before);
    expect(version()).toBe(before + 1);
  });

  it('counts a request transaction at its (shared) commit, nothing for one rolled back', async () => {
    const before = version();
    let during = -1;
    await inRequestTransaction(f.store.db, async () => {
      await tickClock();
      during = version();
      return true;
    });
    expect(during).toBe(before);
    expect(version()).toBe(before + 1);
    const committed = await inRequestTransaction(f.store.db, async () => {
      await tickClock();
      return false;
    });
    expect(committed).toBe(false);
    expect(version()).toBe(before + 1);
    await expect(
      transact(f.store.db, async (trx) => {
        await sql`update event_clock set ticks = ticks + 1 where id = 1`.execute(trx);
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(version()).toBe(before + 1);
  });

  it('counts the members of one group commit that kept their writes, not the one rolled back', async () => {
    const before = version();
    const tenants = f.store.writes.version(['tenants']);
    // Together: on SQLite both go into one shared commit, each on its own savepoint.
    const [kept, dropped] = await Promise.all([
      inRequestTransaction(f.store.db, async () => {
        await scopedDb(f.store.db)
          .insertInto('tenants')
          .values({ id: 'ten_group', name: 'group', createdAt: 0 } as never)
          .execute();
        return true;
      }),
      inRequestTransaction(f.store.db, async () => {
        await tickClock();
        return false;
      }),
    ]);
    expect([kept, dropped]).toEqual([true, false]);
    expect(f.store.writes.version(['tenants'])).toBe(tenants + 1);
    expect(version()).toBe(before);
  });

  it('does not count writes to tables outside those asked about, nor reads', async () => {
    const before = version();
    const other = f.store.writes.version(['tenants']);
    await f.store.db
      .insertInto('tenants')
      .values({ id: 'ten_watch', name: 'watch', createdAt: 0 } as never)
      .execute();
    await f.store.db.selectFrom('userSchedules').selectAll().execute();
    expect(version()).toBe(before);
    expect(f.store.writes.version(['tenants'])).toBe(other + 1);
  });

  it("does not see another handle's commits (another replica's)", async () => {
    const other = openStore(f.tdb.url);
    try {
      const before = version();
      const ticks = async () =>
        Number((await f.store.db.selectFrom('eventClock').select('ticks').executeTakeFirstOrThrow()).ticks);
      const t0 = await ticks();
      await other.db
        .updateTable('eventClock')
        .set((eb) => ({ ticks: eb('ticks', '+', 1) }))
        .where('id', '=', 1)
        .execute();
      expect(await ticks()).toBe(t0 + 1);
      expect(version()).toBe(before);
      expect(other.writes.version(PROBED_TABLES)).toBe(1);
    } finally {
      await other.close();
    }
  });
});
