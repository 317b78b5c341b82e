import type SQLite from 'better-sqlite3';
import { CamelCasePlugin, type PluginTransformResultArgs, type QueryResult, type UnknownRow } from 'kysely';

/**
 * SQLite rows named and shaped once per statement, not once per row.
 *
 * better-sqlite3 builds each row as an object by setting its columns one by one through V8's
 * API, and looks every column name up in V8's string table again for every row. An object with
 * as many columns as a task's leaves V8's fast layout on the way (a dictionary, where every
 * later read of a field is a hash lookup), and Kysely's CamelCasePlugin then copies each row once
 * more to rename its keys. A GET of one task spent more time there than in SQLite's own work.
 *
 * Here the statement hands out its rows as arrays (better-sqlite3's raw mode), and one function
 * per statement, made from its column names, turns an array into an object literal with the
 * names CamelCasePlugin would have given: every row of a statement has one fixed shape. The
 * store's Kysely then uses {@link SqliteCamelCasePlugin}, which keeps CamelCasePlugin's naming of
 * queries and takes the rows as they are.
 */
export class NamedRowsStatement {
  readonly reader: boolean;
  /** Whether the statement leaves the database as it is (SQLite's own answer). */
  readonly readonly: boolean;
  private names: readonly string[] = [];
  private build: RowBuilder = () => ({});

  constructor(
    private readonly stmt: SQLite.Statement,
    private readonly rename: (column: string) => string,
  ) {
    this.reader = stmt.reader;
    this.readonly = stmt.readonly;
    if (this.reader) {
      stmt.raw(true);
      this.shape();
    }
  }

  /** Still iterating (a streamed select): not to be handed out again. */
  get busy(): boolean {
    return this.stmt.busy;
  }

  all(parameters: readonly unknown[]): UnknownRow[] {
    const raw = this.stmt.all(parameters as unknown[]) as unknown[][];
    const out = new Array<UnknownRow>(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = this.row(raw[i]!);
    return out;
  }

  run(parameters: readonly unknown[]): SQLite.RunResult {
    return this.stmt.run(parameters as unknown[]);
  }

  *iterate(parameters: readonly unknown[]): IterableIterator<UnknownRow> {
    for (const raw of this.stmt.iterate(parameters as unknown[]) as IterableIterator<unknown[]>) yield this.row(raw);
  }

  private row(raw: unknown[]): UnknownRow {
    // SQLite prepares a statement again after the schema changed (a migration), and `select *`
    // then names another list of columns: shaped again from what the statement names now.
    if (raw.length !== this.names.length) this.shape();
    return this.build(raw);
  }

  private shape(): void {
    this.names = this.stmt.columns().map((c) => this.rename(c.name));
    this.build = rowBuilder(this.names);
  }
}

type RowBuilder = (raw: unknown[]) => UnknownRow;

/**
 * Builders kept, by column list. A statement that is not kept prepared (more than the prepared
 * statements' parameters, such as an `in (…)` list of a batch's size, or a copy made while the
 * kept one streams) is prepared every time it runs; its columns are the same each time, and so is
 * its builder: compiled once, not once per run.
 */
const BUILDERS_KEPT = 512;
const builders = new Map<string, RowBuilder>();

/**
 * A function turning a raw row into `{ name0: raw[0], name1: raw[1], … }`, written as one object
 * literal so that V8 gives every row of it one fast shape. The names are our statements' own
 * column names and aliases, quoted as JSON string literals. A later column of the same name wins,
 * as when better-sqlite3 or CamelCasePlugin builds the object. `__proto__` would set the
 * prototype in a literal, so a list naming it is built by assignment instead. One function per
 * column list (the {@link BUILDERS_KEPT} most recently made).
 */
export function rowBuilder(names: readonly string[]): RowBuilder {
  const key = JSON.stringify(names);
  const kept = builders.get(key);
  if (kept) return kept;
  const made = makeBuilder(names);
  if (builders.size >= BUILDERS_KEPT) builders.delete(builders.keys().next().value!);
  builders.set(key, made);
  return made;
}

function makeBuilder(names: readonly string[]): RowBuilder {
  if (names.includes('__proto__'))
    return (raw) => {
      const row: UnknownRow = {};
      names.forEach((n, i) => Object.defineProperty(row, n, { value: raw[i], enumerable: true, writable: true }));
      return row;
    };
  const literal = names.map((n, i) => `${JSON.stringify(n)}: raw[${i}]`).join(', ');
  // Made from column names, once per column list.
  return new Function('raw', `return { ${literal} };`) as RowBuilder;
}

/**
 * CamelCasePlugin for a store whose statements are {@link NamedRowsStatement}s: queries are
 * named in snake_case as before; rows already carry their camelCase names and are taken as they
 * are (the plugin's own pass would copy every row again to find the same names).
 */
export class SqliteCamelCasePlugin extends CamelCasePlugin {
  /** The name CamelCasePlugin gives a result column. */
  rowKey(column: string): string {
    return this.camelCase(column);
  }

  override transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(args.result);
  }
}
