import { MysqlAdapter, sql, type Kysely, type RawBuilder } from 'kysely';
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

/**
 * The task's state column, to filter rows already found by their ids (or walked by them, as a
 * list's page is). SQLite's planner, with no statistics, takes `state = ?` for the more selective
 * term and walks the `(state, …)` index over every queued task rather than looking the few ids
 * up: a claim then costs what the backlog costs. The unary plus (a no-op on the value) keeps
 * SQLite off that index; MySQL/MariaDB plan it by the ids as it is.
 */
export function stateByIds(db: Kysely<Database>, table = 'tasks'): RawBuilder<string> {
  const ref = sql.ref(`${table}.state`);
  return isMysql(db) ? sql<string>`${ref}` : sql<string>`+${ref}`;
}
