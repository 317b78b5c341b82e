import { MysqlAdapter, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/*
 * What differs between the two stores, asked of a handle (a pool or a transaction on it). Apart
 * from db.ts so that the query templates, which db.ts's transactions use, can ask it too.
 */

/**
 * `query` made to read the row as committed now, and lock it for the rest of the transaction,
 * where the store can (MySQL/MariaDB: `FOR UPDATE`). There a plain read inside a transaction
 * answers from the snapshot the transaction took at its first read, which never shows a change
 * committed after it: code that re-reads a row to retry a conditional update would spin for ever
 * on the old value. SQLite lets one writer in at a time, so its plain reads are current.
 */
export function current<Q extends { forUpdate(): Q }>(db: Kysely<Database>, query: Q): Q {
  return isMysql(db) ? query.forUpdate() : query;
}

/** Whether `db` (or a transaction on it) speaks to MySQL/MariaDB rather than SQLite. */
export function isMysql(db: Kysely<Database>): boolean {
  return db.getExecutor().adapter instanceof MysqlAdapter;
}
