import type { CompiledQuery, Compilable, QueryResult } from 'kysely';
import type { Db } from './db.js';
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
    const c = this.compile(db);
    const values = params as Record<string, unknown>;
    const parameters = c.positions.map((p) => ('slot' in p ? values[p.slot] : p.constant));
    return db.executeQuery<R>({ sql: c.sql, query: c.query, queryId: c.queryId, parameters });
  }

  private compile(db: Db): Compiled {
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
