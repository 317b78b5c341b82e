import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import {
  CamelCasePlugin,
  Kysely,
  Migrator,
  MysqlDialect,
  SqliteDialect,
  sql,
  type Migration,
  type Transaction,
} from 'kysely';
import { createPool } from 'mysql2';
import * as m0001 from './migrations/0001-initial.js';
import * as m0002 from './migrations/0002-event-clock.js';
import * as m0004 from './migrations/0004-task-deliveries.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
export type Dialect = 'sqlite' | 'mysql';

export interface Store {
  db: Db;
  dialect: Dialect;
  close(): Promise<void>;
}

const migrations: Record<string, Migration> = {
  '0001-initial': m0001,
  '0002-event-clock': m0002,
  '0004-task-deliveries': m0004,
};

/**
 * Opens the database named by a `sqlite:<file>` or `mysql://user:pass@host:port/db` URL.
 *
 * @example const store = await openStore('sqlite:./data/cairn.db');
 */
export function openStore(url: string): Store {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const database = new SQLite(file);
    // WAL keeps every committed transaction across a process kill; NORMAL syncs at checkpoints.
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    const db = new Kysely<Database>({
      dialect: new SqliteDialect({ database }),
      plugins: [new CamelCasePlugin()],
    });
    return { db, dialect: 'sqlite', close: () => db.destroy() };
  }
  if (url.startsWith('mysql://')) {
    const pool = createPool({
      uri: url,
      connectionLimit: 10,
      supportBigNumbers: true,
      bigNumberStrings: false,
      // BIGINT columns hold epoch ms and byte counts: always below 2^53.
      typeCast(field, next) {
        if (field.type === 'LONGLONG') {
          const v = field.string();
          return v === null ? null : Number(v);
        }
        if (field.type === 'NEWDECIMAL' || field.type === 'DOUBLE') {
          const v = field.string();
          return v === null ? null : Number(v);
        }
        return next();
      },
    });
    const db = new Kysely<Database>({
      dialect: new MysqlDialect({ pool }),
      plugins: [new CamelCasePlugin()],
    });
    return { db, dialect: 'mysql', close: () => db.destroy() };
  }
  throw new Error(`unsupported database URL (want sqlite:<file> or mysql://...): ${url}`);
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrate(db: Db): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message}`, { cause: error });
  }
}

/** True when the store answers and every migration is applied. */
export async function storeReady(db: Db): Promise<boolean> {
  try {
    const migrator = new Migrator({ db, provider: { getMigrations: () => Promise.resolve(migrations) } });
    const list = await migrator.getMigrations();
    await sql`select 1`.execute(db);
    return list.every((m) => m.executedAt !== undefined);
  } catch {
    return false;
  }
}

/** Errors after which the whole transaction may simply run again. */
export function isTransient(err: unknown): boolean {
  const e = err as { errno?: number; code?: string };
  // MySQL/MariaDB: deadlock (1213), lock wait timeout (1205); SQLite: busy/locked.
  return e.errno === 1213 || e.errno === 1205 || e.code === 'SQLITE_BUSY' || e.code === 'SQLITE_LOCKED';
}

/**
 * Runs `work` in a transaction, again (up to 5 times, with jittered waits) when the database
 * chose it as a deadlock victim. Concurrent report batches and heartbeats of several agents
 * touch the same indexes, and InnoDB resolves such cycles by aborting one side.
 */
export async function transact<T>(db: Db, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work);
    } catch (err) {
      if (attempt >= 5 || !isTransient(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
    }
  }
}
