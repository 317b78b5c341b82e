import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { transact } from './db.js';
import { storeFixture } from '../testing/store-fixture.js';

// sql_mode is a MySQL/MariaDB notion: SQLite has no silent truncation to switch off.
describe.runIf(backends.includes('mysql'))('MySQL sessions run in strict mode whatever the server default', () => {
  const f = storeFixture('mysql', { migrate: false, serverCollation: true });

  it('sets STRICT_ALL_TABLES on every pool connection, so a too-long value is an error and never a cut', async () => {
    // Several transactions open at once hold several pool connections: each must be strict.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let opened = 0;
    const modes = Array.from({ length: 4 }, () =>
      transact(f.store.db, async (trx) => {
        const r = await sql<{ mode: string }>`select @@SESSION.sql_mode as mode`.execute(trx);
        if (++opened === 4) release();
        await held;
        return r.rows[0]!.mode;
      }),
    );
    for (const mode of await Promise.all(modes)) expect(mode.split(',')).toContain('STRICT_ALL_TABLES');
    // A non-transactional table is where STRICT_TRANS_TABLES alone still cuts a multi-row insert.
    await sql`create table scratch (s varchar(4) not null) engine=MyISAM`.execute(f.store.db);
    await expect(sql`insert into scratch values ('ok'), ('too long')`.execute(f.store.db)).rejects.toThrow(/too long/i);
    const rows = await sql<{ s: string }>`select s from scratch`.execute(f.store.db);
    expect(rows.rows.map((r) => r.s)).not.toContain('too ');
  });
});
