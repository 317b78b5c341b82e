import {
  FromNode,
  MysqlAdapter,
  RawNode,
  SelectQueryNode,
  sql,
  TableNode,
  UpdateQueryNode,
  type Kysely,
  type KyselyPlugin,
  type OperationNode,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RawBuilder,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely';
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
  return filterOnly(db, `${table}.state`);
}

/**
 * `column` (`table.column`) as a term SQLite filters rows by but does not plan by: the unary plus
 * (a no-op on the value) keeps its planner off the column's index, for a query that must walk
 * another one (see {@link stateByIds}). MySQL/MariaDB get the column as it is.
 */
export function filterOnly(db: Kysely<Database>, column: string): RawBuilder<string> {
  const ref = sql.ref(column);
  return isMysql(db) ? sql<string>`${ref}` : sql<string>`+${ref}`;
}

/**
 * `query`, a select from `table` alone or an update of it, read through `index` on MySQL/MariaDB
 * (`FORCE INDEX`); on SQLite as it is. For a page of a list keyed by (tenant, instance, job or
 * task, id), where the query names the index's first column: MariaDB's planner, with statistics
 * taken before the table grew, looks the tenant up (`ref`) and walks its rows from the end,
 * comparing the cursor row by row, so a page 5,000 rows deep read 5,000 rows; with fresh
 * statistics it may walk the primary key instead, over every other tenant's rows. Forced, a page
 * is a range of the index from its cursor: its own rows. SQLite plans these by the index already
 * (its plans are tested). For an update it also bounds what is locked: InnoDB locks every row
 * the update reads, matching or not, until the transaction ends.
 */
export function throughIndex<Q extends { withPlugin(plugin: KyselyPlugin): Q }>(
  db: Kysely<Database>,
  query: Q,
  table: string,
  index: string,
): Q {
  return isMysql(db) ? query.withPlugin(new ForceIndex(table, index)) : query;
}

class ForceIndex implements KyselyPlugin {
  constructor(
    private readonly table: string,
    private readonly index: string,
  ) {}

  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    const hinted = RawNode.createWithSql(`\`${this.table}\` force index (\`${this.index}\`)`);
    const named = (table: OperationNode | undefined) =>
      table !== undefined && TableNode.is(table) && table.table.identifier.name === this.table;
    if (UpdateQueryNode.is(node) && named(node.table)) return { ...node, table: hinted };
    const select = SelectQueryNode.is(node) ? node : undefined;
    const from = select?.from?.froms.length === 1 ? select.from.froms[0] : undefined;
    if (!select || !from || !named(from))
      throw new Error(`FORCE INDEX (${this.index}) is for a select from ${this.table} alone, or an update of it`);
    return { ...select, from: FromNode.create([hinted]) };
  }

  transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(result);
  }
}
