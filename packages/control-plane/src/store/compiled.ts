import { sql, type CompiledQuery, type Compilable, type Insertable, type QueryResult } from 'kysely';
import type { Db } from './db.js';
import type { Database } from './schema.js';
import { isMysql } from './dialect.js';

/**
 * Where a parameter goes: the builder is run once with one of these for each parameter, and
 * the compiled query's parameters are searched for them by identity.
 */
class Slot {
  constructor(readonly name: string) {}
  /** A slot turned into text was used to build SQL text, not bound as a value. */
  toString(): string {
    throw new Error(`query template parameter '${this.name}' must be bound as a value, not used as text`);
  }
}

/** A position of the compiled query: a named parameter, or a constant the builder put there. */
type Position = { slot: string } | { constant: unknown };

interface Compiled {
  sql: string;
  query: CompiledQuery['query'];
  queryId: CompiledQuery['queryId'];
  positions: Position[];
}

/**
 * A query whose SQL is built and compiled once per store dialect, then run with new values:
 * Kysely otherwise builds, transforms (the camel-case plugin) and compiles every query anew, which
 * on the hot paths (a scheduler tick, an authenticated read) costs more than SQLite running it.
 * Results go through the store's plugins as any query's do (rows come back in camel case), and
 * `db` may be the request's transaction (the scoped handle routes it there).
 *
 * The builder gets placeholders for its parameters and must only bind them as values (`where`,
 * `set`, `values`, `limit`): a template that branched on one, or built text from one, would be
 * compiled for one value and run for all, so that is refused when it is compiled. A list (an
 * `in` of varying length) is not a template: its SQL changes with the length.
 *
 * @example
 * const byId = template((db, p: { id: string }) => db.selectFrom('tasks').selectAll().where('id', '=', p.id));
 * const task = await byId.first(db, { id });
 */
export class Template<P extends object, R> {
  private readonly compiled = new Map<'sqlite' | 'mysql', Compiled>();

  constructor(private readonly build: (db: Db, p: P) => Compilable<R>) {}

  /** Every row the query answers. */
  async all(db: Db, params: P): Promise<R[]> {
    return (await this.run(db, params)).rows;
  }

  /** The first row, if any. */
  async first(db: Db, params: P): Promise<R | undefined> {
    return (await this.run(db, params)).rows[0];
  }

  /** The driver's whole result (rows, and affected rows for a write). */
  async run(db: Db, params: P): Promise<QueryResult<R>> {
    const c = this.compiledFor(db);
    const values = params as Record<string, unknown>;
    const parameters = c.positions.map((p) => ('slot' in p ? values[p.slot] : p.constant));
    return db.executeQuery<R>({ sql: c.sql, query: c.query, queryId: c.queryId, parameters });
  }

  /** The query as compiled for `db`'s dialect (compiled now if it was not yet). */
  compiledFor(db: Db): Compiled {
    const dialect = isMysql(db) ? 'mysql' : 'sqlite';
    const known = this.compiled.get(dialect);
    if (known) return known;
    const slots = new Map<string, Slot>();
    const placeholders = new Proxy(
      {},
      {
        get(_t, name) {
          if (typeof name !== 'string') return undefined;
          let slot = slots.get(name);
          if (!slot) slots.set(name, (slot = new Slot(name)));
          return slot;
        },
      },
    ) as P;
    const query = this.build(db, placeholders).compile();
    const positions: Position[] = query.parameters.map((v) => (v instanceof Slot ? { slot: v.name } : { constant: v }));
    for (const name of slots.keys()) {
      if (!positions.some((p) => 'slot' in p && p.slot === name))
        throw new Error(`query template parameter '${name}' is read but not bound as a value: ${query.sql}`);
    }
    const compiled = { sql: query.sql, query: query.query, queryId: query.queryId, positions };
    this.compiled.set(dialect, compiled);
    return compiled;
  }
}

/** A {@link Template}: a query built and compiled once, run with new values. */
export function template<P extends object, R>(build: (db: Db, p: P) => Compilable<R>): Template<P, R> {
  return new Template(build);
}

/** Shapes a {@link ShapedTemplate} keeps compiled; a shape beyond them runs as an ordinary query. */
const MAX_SHAPES = 64;

/**
 * A query whose SQL text depends on a shape known before its values (which columns an update
 * sets, how many rows an insert writes), compiled once per shape as a {@link Template} is. The
 * builder may branch on the shape, never on a parameter. At most {@link MAX_SHAPES} shapes are
 * kept, so a caller with unbounded shapes costs a fresh build per call, not memory.
 */
export class ShapedTemplate<S, P extends object, R> {
  private readonly shapes = new Map<string, Template<P, R>>();

  constructor(
    private readonly keyOf: (shape: S) => string,
    private readonly build: (db: Db, p: P, shape: S) => Compilable<R>,
  ) {}

  /** The driver's whole result (rows, and affected rows for a write). */
  async run(db: Db, shape: S, params: P): Promise<QueryResult<R>> {
    const key = this.keyOf(shape);
    let known = this.shapes.get(key);
    if (!known) {
      if (this.shapes.size >= MAX_SHAPES) return db.executeQuery<R>(this.build(db, params, shape).compile());
      known = new Template((d, p: P) => this.build(d, p, shape));
      this.shapes.set(key, known);
    }
    return known.run(db, params);
  }
}

/**
 * A statement that holds a list of rows (a `values` list, a `union all` of selects) whose text
 * repeats one row's part per row, as a report tick's joined update does: compiled by Kysely once
 * per shape (for two and three rows), then written for any number of rows by repeating the part
 * the third row added, with the rows' values bound in row order before the shape's own. When it
 * is learnt, the text is checked against what Kysely compiles for five rows; a shape whose text
 * does not repeat so is built by Kysely on every call. At most {@link MAX_SHAPES} shapes are
 * kept. The builder binds each row's values as values (never text) and may branch on the shape.
 */
export class RowsTemplate<S> {
  private readonly shapes = new Map<string, Repeated | null>();

  constructor(
    private readonly keyOf: (shape: S) => string,
    /** How many values each row binds. */
    private readonly widthOf: (shape: S) => number,
    /** The statement compiled for `db` (a raw `sql` builder's `.compile(db)`). */
    private readonly build: (db: Db, shape: S, rows: readonly (readonly unknown[])[]) => CompiledQuery,
  ) {}

  /** Runs the statement for `rows` (at least two; each binds `widthOf(shape)` values). */
  async run(db: Db, shape: S, rows: readonly (readonly unknown[])[]): Promise<QueryResult<unknown>> {
    const repeated = rows.length >= 2 ? this.repeatedFor(db, shape) : undefined;
    if (!repeated) return db.executeQuery(this.build(db, shape, rows));
    const parameters: unknown[] = [];
    for (const row of rows) for (const v of row) parameters.push(v);
    for (const v of repeated.after) parameters.push(v);
    return db.executeQuery({
      sql: repeated.head + repeated.row.repeat(rows.length - 2) + repeated.tail,
      query: repeated.query,
      queryId: repeated.queryId,
      parameters,
    });
  }

  /** The shape's text split around its repeated part, or undefined when it does not repeat so. */
  repeatedFor(db: Db, shape: S): Repeated | undefined {
    const key = `${isMysql(db) ? 'mysql' : 'sqlite'}|${this.keyOf(shape)}`;
    let known = this.shapes.get(key);
    if (known === undefined) {
      if (this.shapes.size >= MAX_SHAPES) return undefined;
      known = learnRepeated((n) => this.build(db, shape, slotRows(n, this.widthOf(shape))), this.widthOf(shape));
      this.shapes.set(key, known);
    }
    return known ?? undefined;
  }
}

/** A {@link RowsTemplate}'s shape as compiled: two rows' text is `head` + `tail`, each more row adds `row` between. */
interface Repeated {
  head: string;
  row: string;
  tail: string;
  /** The shape's own values, bound after the rows'. */
  after: unknown[];
  query: CompiledQuery['query'];
  queryId: CompiledQuery['queryId'];
}

/** `n` rows of `width` placeholders, named `row:column`. */
function slotRows(n: number, width: number): Slot[][] {
  return Array.from({ length: n }, (_, r) => Array.from({ length: width }, (_, c) => new Slot(`${r}:${c}`)));
}

/** Finds the part of the text one more row adds, and checks it against five rows; null when the text does not repeat so. */
function learnRepeated(compile: (rows: number) => CompiledQuery, width: number): Repeated | null {
  const [two, three, five] = [compile(2), compile(3), compile(5)];
  let at = 0;
  while (at < two.sql.length && two.sql[at] === three.sql[at]) at++;
  const head = two.sql.slice(0, at);
  const tail = two.sql.slice(at);
  const row = three.sql.slice(at, at + three.sql.length - two.sql.length);
  if (head + row + tail !== three.sql || head + row.repeat(3) + tail !== five.sql) return null;
  // The rows' values first, in row order, then the same values of the shape's own in every count.
  const rowsBound = (q: CompiledQuery, n: number) =>
    q.parameters
      .slice(0, n * width)
      .every((v, i) => v instanceof Slot && v.name === `${Math.floor(i / width)}:${i % width}`);
  const after = two.parameters.slice(2 * width);
  const sameAfter = (q: CompiledQuery, n: number) =>
    q.parameters.length === n * width + after.length && after.every((v, i) => q.parameters[n * width + i] === v);
  if (!rowsBound(two, 2) || !rowsBound(five, 5) || !sameAfter(five, 5) || after.some((v) => v instanceof Slot))
    return null;
  return { head, row, tail, after, query: two.query, queryId: two.queryId };
}

/** Rows an insert may hold and still go through a compiled shape (a larger batch is built anew). */
const SHAPED_INSERT_ROWS = 8;

interface InsertShape {
  table: keyof Database;
  columns: string[];
  rows: number;
  orIgnore: boolean;
}

const INSERTS = new ShapedTemplate<InsertShape, Record<string, unknown>, unknown>(
  (s) => `${s.table}|${s.orIgnore ? 'ignore' : 'fail'}|${s.rows}|${s.columns.join(',')}`,
  (db, p, s) => {
    const values = Array.from({ length: s.rows }, (_, i) =>
      Object.fromEntries(s.columns.map((column) => [column, p[`${i}:${column}`]])),
    );
    const insert = db.insertInto(s.table).values(values as never);
    return s.orIgnore ? insert.orIgnore() : insert;
  },
);

/**
 * A batch insert of more rows than {@link INSERTS} holds (a report tick's progress rows or events),
 * of one table, column list and `or ignore`: the tuple of a row's placeholders repeated once per
 * row, as Kysely compiles it (learnt and checked by {@link RowsTemplate}).
 */
const BATCH_INSERTS = new RowsTemplate<Omit<InsertShape, 'rows'>>(
  (s) => `${s.table}|${s.orIgnore ? 'ignore' : 'fail'}|${s.columns.join(',')}`,
  (s) => s.columns.length,
  (db, s, rows) => {
    const values = rows.map((row) => Object.fromEntries(s.columns.map((column, i) => [column, row[i]])));
    const insert = db.insertInto(s.table).values(values as never);
    return (s.orIgnore ? insert.orIgnore() : insert).compile();
  },
);

/**
 * Inserts `rows` (each naming the same columns) in one statement, compiled once per table,
 * column list and row count up to {@link SHAPED_INSERT_ROWS}, and once per table and column list
 * for any larger batch: the hot path's inserts (a task, its events, a backup record, a tick's
 * progress rows) would otherwise be built, transformed and compiled by Kysely on every call.
 * Rows not named alike are built by Kysely. `orIgnore` skips a row a unique key already holds.
 */
export async function insertRows<T extends keyof Database>(
  db: Db,
  table: T,
  rows: readonly Insertable<Database[T]>[],
  options: { orIgnore?: boolean } = {},
): Promise<void> {
  if (rows.length === 0) return;
  const orIgnore = options.orIgnore ?? false;
  const columns = definedKeys(rows[0]!);
  if (!rows.every((r) => sameKeys(definedKeys(r), columns))) {
    const insert = db.insertInto(table).values(rows as never);
    await (orIgnore ? insert.orIgnore() : insert).execute();
    return;
  }
  if (rows.length > SHAPED_INSERT_ROWS) {
    const values = rows.map((row) => columns.map((column) => (row as Record<string, unknown>)[column]));
    await BATCH_INSERTS.run(db, { table, columns, orIgnore }, values);
    return;
  }
  const params: Record<string, unknown> = {};
  rows.forEach((row, i) => {
    for (const column of columns) params[`${i}:${column}`] = (row as Record<string, unknown>)[column];
  });
  await INSERTS.run(db, { table, columns, rows: rows.length, orIgnore }, params);
}

/** A row's columns with a value (Kysely leaves an undefined one out of an insert). */
function definedKeys(row: object): string[] {
  return Object.keys(row).filter((k) => (row as Record<string, unknown>)[k] !== undefined);
}

function sameKeys(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

/**
 * What an {@link upsert} does to a column of the row already there: `set` writes the value given,
 * `add` adds it (a count moved by a delta), `keep` writes the column's own value back (nothing
 * changes, but MySQL/MariaDB takes the row's write lock).
 */
export type OnConflict = 'set' | 'add' | 'keep';

interface UpsertShape {
  table: keyof Database;
  columns: string[];
  key: readonly string[];
  update: [string, OnConflict][];
}

const UPSERTS = new ShapedTemplate<UpsertShape, Record<string, unknown>, unknown>(
  (s) => `${s.table}|${s.key.join(',')}|${s.columns.join(',')}|${s.update.map(([c, on]) => `${c}=${on}`).join(',')}`,
  (db, p, s) => {
    const values = Object.fromEntries(s.columns.map((column) => [column, p[column]]));
    const set = Object.fromEntries(
      s.update.map(([column, on]) => {
        const own = sql.ref(column);
        return [column, on === 'set' ? p[column] : on === 'add' ? sql`${own} + ${p[column]}` : own];
      }),
    );
    const insert = db.insertInto(s.table).values(values as never);
    return isMysql(db)
      ? insert.onDuplicateKeyUpdate(set as never)
      : insert.onConflict((oc) => oc.columns(s.key as never).doUpdateSet(set as never));
  },
);

/**
 * Inserts `values` into `table` or, where a row with the same `key` is there already, updates
 * that row's columns as `update` says (each `set`, `add` or `keep` with the value in `values`):
 * one statement on either store (`on duplicate key update` on MySQL/MariaDB, `on conflict (…) do
 * update` on SQLite), compiled once per table, columns and update. `key` names the columns of
 * the table's primary or unique key that the values may collide on. On MySQL/MariaDB the
 * statement takes the row's write lock either way, which a locking read of a row that may be
 * missing can use to make it first (`keep`).
 * A count moved by a delta, made at the delta when missing, is `{ used: 'add' }` with the delta
 * as `used` in `values`.
 */
export async function upsert<T extends keyof Database & string>(
  db: Db,
  table: T,
  values: Insertable<Database[T]>,
  key: readonly (keyof Database[T] & string)[],
  update: Partial<Record<keyof Database[T] & string, OnConflict>>,
): Promise<void> {
  const columns = definedKeys(values);
  const entries = Object.entries(update) as [string, OnConflict][];
  const missing = entries.find(([column, on]) => on !== 'keep' && !columns.includes(column));
  if (missing) throw new Error(`upsert of ${table}: '${missing[0]}' is to be ${missing[1]} but has no value`);
  await UPSERTS.run(db, { table, columns, key, update: entries }, values as Record<string, unknown>);
}
