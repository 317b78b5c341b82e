import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import {
  CamelCasePlugin,
  CompiledQuery,
  Kysely,
  Migrator,
  MysqlDialect,
  SqliteDialect,
  sql,
  type KyselyConfig,
  type Migration,
  type Transaction,
} from 'kysely';
import { createPool } from 'mysql2';
import { NamedRowsStatement, SqliteCamelCasePlugin } from './sqlite-rows.js';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpoints.js';
import { ReadingSqliteDialect } from './sqlite-driver.js';
import { WatchedDialect, WriteWatch } from './write-watch.js';
import * as m0001 from './migrations/0001-initial.js';
import * as m0002 from './migrations/0002-event-clock.js';
import * as m0003 from './migrations/0003-binary-names.js';
import * as m0004 from './migrations/0004-task-deliveries.js';
import * as m0005 from './migrations/0005-idempotency-leases.js';
import * as m0006 from './migrations/0006-credentials.js';
import * as m0007 from './migrations/0007-schedules.js';
import * as m0008 from './migrations/0008-backup-deletes.js';
import * as m0009 from './migrations/0009-sync.js';
import * as m0010 from './migrations/0010-provider-schedules.js';
import * as m0011 from './migrations/0011-rpo.js';
import * as m0012 from './migrations/0012-backup-jobs.js';
import * as m0013 from './migrations/0013-maintenance.js';
import * as m0014 from './migrations/0014-locator-claims.js';
import * as m0016 from './migrations/0016-endpoint-secrets.js';
import * as m0017 from './migrations/0017-recorded-at.js';
import * as m0018 from './migrations/0018-sync-holds.js';
import * as m0019 from './migrations/0019-repository-identity.js';
import * as m0021 from './migrations/0021-tenant-quotas.js';
import * as m0022 from './migrations/0022-schedule-floor.js';
import * as m0023 from './migrations/0023-next-fires.js';
import * as m0024 from './migrations/0024-drop-run-outstanding.js';
import * as m0025 from './migrations/0025-auth-epoch.js';
import * as m0026 from './migrations/0026-tasks-cancels.js';
import * as m0027 from './migrations/0027-sync-pages.js';
import * as m0028 from './migrations/0028-duty-leases.js';
import * as m0029 from './migrations/0029-provider-export-to.js';
import * as m0030 from './migrations/0030-backups-recorded.js';
import * as m0031 from './migrations/0031-lists-newest-first.js';
import * as m0032 from './migrations/0032-tenant-queues.js';
import * as m0033 from './migrations/0033-tasks-tenant-state.js';
import * as m0034 from './migrations/0034-restore-point-usage.js';
import * as m0035 from './migrations/0035-tenant-counts.js';
import * as m0036 from './migrations/0036-instances-tenant-offering.js';
import * as m0037 from './migrations/0037-kept-schedule-job-counts.js';
import * as m0038 from './migrations/0038-instances-offering.js';
import * as m0039 from './migrations/0039-schedules-by-tenant.js';
import * as m0040 from './migrations/0040-history.js';
import * as m0041 from './migrations/0041-protected-bytes.js';
import * as m0042 from './migrations/0042-usage-counts.js';
import * as m0043 from './migrations/0043-last-backup-at.js';
import * as m0044 from './migrations/0044-task-counts.js';
import { currentTransaction, inGroupTransaction } from './request-scope.js';
import { isMysql } from './dialect.js';
import { holdsEvents, writeHeldEvents } from './event-log.js';
import type { Database } from './schema.js';
import { systemClock, type Clock } from '../clock.js';

export type Db = Kysely<Database>;
export type Dialect = 'sqlite' | 'mysql';

/** Told of every statement a store runs, transactions' begin and commit included: its SQL and its time in ms. */
export type StatementObserver = (sql: string, ms: number) => void;

export interface Store {
  db: Db;
  dialect: Dialect;
  /** The SQLite database file (absolute; absent for MySQL and `:memory:`). */
  file?: string;
  /** The commits of this process to each table (see {@link WriteWatch}). */
  writes: WriteWatch;
  /** A SQLite file's checkpoints, made on a worker thread (absent for MySQL and `:memory:`). */
  checkpoints?: Checkpointer;
  close(): Promise<void>;
}

/** Every migration; `clock` is the time a migration that must date what it writes reads. */
export const migrationsAt = (clock: Clock): Record<string, Migration> => ({
  '0001-initial': m0001,
  '0002-event-clock': m0002,
  '0003-binary-names': m0003,
  '0004-task-deliveries': m0004,
  '0005-idempotency-leases': m0005,
  '0006-credentials': m0006,
  '0007-schedules': m0007,
  '0008-backup-deletes': m0008,
  '0009-sync': m0009,
  '0010-provider-schedules': m0010,
  '0011-rpo': m0011,
  '0012-backup-jobs': m0012,
  '0013-maintenance': m0013,
  '0014-locator-claims': m0014,
  '0016-endpoint-secrets': m0016,
  '0017-recorded-at': { up: (db) => m0017.up(db, clock.now()), down: m0017.down },
  '0018-sync-holds': m0018,
  '0019-repository-identity': m0019,
  '0021-tenant-quotas': m0021,
  '0022-schedule-floor': m0022,
  '0023-next-fires': m0023,
  '0024-drop-run-outstanding': m0024,
  '0025-auth-epoch': m0025,
  '0026-tasks-cancels': m0026,
  '0027-sync-pages': m0027,
  '0028-duty-leases': m0028,
  '0029-provider-export-to': m0029,
  '0030-backups-recorded': m0030,
  '0031-lists-newest-first': m0031,
  '0032-tenant-queues': m0032,
  '0033-tasks-tenant-state': m0033,
  '0034-restore-point-usage': m0034,
  '0035-tenant-counts': m0035,
  '0036-instances-tenant-offering': m0036,
  '0037-kept-schedule-job-counts': m0037,
  '0038-instances-offering': m0038,
  '0039-schedules-by-tenant': m0039,
  '0040-history': m0040,
  '0041-protected-bytes': m0041,
  '0042-usage-counts': m0042,
  '0043-last-backup-at': m0043,
  '0044-task-counts': m0044,
});

/*
 * Every MySQL session runs strict whatever the server's global sql_mode says: a value too long
 * for its column, or not valid in its character set, is an error and never a silent cut (a cut
 * JSON text is invalid JSON, and every later read of it fails).
 */
const MYSQL_SQL_MODE =
  'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION';

/** Statements kept prepared per SQLite database (the most recently used). */
const PREPARED_STATEMENTS = 200;
/**
 * Statements with more parameters than this are not kept: an IN list or a multi-row insert has
 * a text per length, and each compiled program grows with it (10,000 agents' heartbeats, stored
 * in batches of every size, once kept 500 such programs: over 3 GB).
 */
const PREPARED_MAX_PARAMETERS = 32;

/**
 * The SQLite database as Kysely's driver sees it, with each short statement's SQL prepared once:
 * the driver prepares every query it runs anew, which costs more than running a short one. A
 * cached statement still iterating (a streamed select) is not handed out again; a fresh one is.
 * Every statement hands out its rows already named as `rename` names a column (see
 * {@link NamedRowsStatement}).
 */
function preparedOnce(
  database: SQLite.Database,
  rename: (column: string) => string,
): { prepare(text: string): NamedRowsStatement; readonly inTransaction: boolean; close(): void } {
  const cache = new Map<string, NamedRowsStatement>();
  const prepare = (text: string) => new NamedRowsStatement(database.prepare(text), rename);
  const parameters = (text: string) => {
    let n = 0;
    for (let i = text.indexOf('?'); i !== -1 && n <= PREPARED_MAX_PARAMETERS; i = text.indexOf('?', i + 1)) n++;
    return n;
  };
  return {
    prepare(text: string) {
      if (parameters(text) > PREPARED_MAX_PARAMETERS) return prepare(text);
      const cached = cache.get(text);
      if (cached && !cached.busy) {
        // Most recently used last: the first in the map is the one to drop.
        cache.delete(text);
        cache.set(text, cached);
        return cached;
      }
      const stmt = prepare(text);
      if (!cached) {
        if (cache.size >= PREPARED_STATEMENTS) cache.delete(cache.keys().next().value!);
        cache.set(text, stmt);
      }
      return stmt;
    },
    get inTransaction() {
      return database.inTransaction;
    },
    close() {
      cache.clear();
      database.close();
    },
  };
}

/** A second connection to a SQLite file, for reads outside a transaction: it never writes. */
function openReader(file: string, rename: (column: string) => string) {
  const database = new SQLite(file);
  database.pragma('query_only = 1');
  database.pragma('busy_timeout = 5000');
  return preparedOnce(database, rename);
}

/**
 * Opens the database named by a `sqlite:<file>` or `mysql://user:pass@host:port/db` URL.
 *
 * @example const store = await openStore('sqlite:./data/cairn.db');
 */
export function openStore(url: string, observe?: StatementObserver): Store {
  const log: KyselyConfig['log'] = observe && ((event) => observe(event.query.sql, event.queryDurationMillis));
  const writes = new WriteWatch();
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const database = new SQLite(file);
    // WAL keeps every committed transaction across a process kill; NORMAL syncs at checkpoints.
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    // The log copied back into the file off this thread (see sqlite-checkpoints.ts).
    const checkpoints = file === ':memory:' ? undefined : startCheckpointer(database, file);
    const camelCase = new SqliteCamelCasePlugin();
    const rename = (column: string) => camelCase.rowKey(column);
    const writer = { database: preparedOnce(database, rename) };
    const db = new Kysely<Database>({
      // A file has a reader connection beside the writer (see ReadingSqliteDialect); an in-memory
      // database is one connection's own, so it has none.
      dialect: new WatchedDialect(
        file === ':memory:' ? new SqliteDialect(writer) : new ReadingSqliteDialect(writer, openReader(file, rename)),
        writes,
      ),
      plugins: [camelCase],
      ...(log ? { log } : {}),
    });
    return {
      db,
      dialect: 'sqlite',
      ...(file === ':memory:' ? {} : { file: path.resolve(file) }),
      writes,
      ...(checkpoints ? { checkpoints } : {}),
      close: async () => {
        await checkpoints?.stop();
        await db.destroy();
      },
    };
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
      dialect: new WatchedDialect(
        new MysqlDialect({
          pool,
          onCreateConnection: async (connection) => {
            await connection.executeQuery(CompiledQuery.raw(`SET SESSION sql_mode = '${MYSQL_SQL_MODE}'`));
          },
        }),
        writes,
      ),
      plugins: [new CamelCasePlugin()],
      ...(log ? { log } : {}),
    });
    return { db, dialect: 'mysql', writes, close: () => db.destroy() };
  }
  throw new Error(`unsupported database URL (want sqlite:<file> or mysql://...): ${url}`);
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrate(db: Db, clock: Clock = systemClock): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrationsAt(clock)) },
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
    const migrator = new Migrator({
      db,
      provider: { getMigrations: () => Promise.resolve(migrationsAt(systemClock)) },
    });
    const list = await migrator.getMigrations();
    await sql`select 1`.execute(db);
    return list.every((m) => m.executedAt !== undefined);
  } catch {
    return false;
  }
}

/** A write refused by a unique key: something with the same identity was created meanwhile. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { errno?: number; code?: string };
  return e.errno === 1062 || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
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
  // Inside a request's transaction the work joins it: the request commits or rolls back as one
  // (and a deadlock aborts the whole request, which its client may retry).
  const joined = currentTransaction();
  if (joined) return work(joined);
  for (let attempt = 1; ; attempt++) {
    try {
      // SQLite: one member of the store's group commit (its one connection runs one transaction
      // at a time, and a commit costs more than most work's statements).
      if (!isMysql(db)) return await inGroupTransaction(db, work);
      return await db.transaction().execute(async (trx) => {
        holdsEvents(trx);
        const result = await work(trx);
        await writeHeldEvents(trx);
        return result;
      });
    } catch (err) {
      if (attempt >= 5 || !isTransient(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
    }
  }
}
