import type {
  CompiledQuery,
  DatabaseConnection,
  DatabaseIntrospector,
  Dialect,
  DialectAdapter,
  Driver,
  Kysely,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
} from 'kysely';

/**
 * The table a statement writes, by its first words (`insert [or …|ignore] into`, `replace into`,
 * `update`, `delete from`), as Kysely compiles them and as hand-written SQL spells them.
 */
const WRITE =
  /^\s*(?:insert(?:\s+or\s+\w+|\s+ignore)?\s+into|replace\s+into|update(?:\s+ignore)?|delete\s+from)\s+[`"]?(\w+)/i;

/** The table `sql` writes (its name as the database knows it), or undefined when it writes none. */
export function writtenTable(sql: string): string | undefined {
  return WRITE.exec(sql)?.[1];
}

/**
 * What this process committed to its store, per table: a count of the commits that wrote each.
 * A reader that remembers {@link version} knows, when it has not moved, that no write of this
 * process to those tables committed since (writes of other processes are not seen here).
 */
export class WriteWatch {
  private readonly commits = new Map<string, number>();

  /** Commits so far (by this process) that wrote any of `tables` (a number that only grows). */
  version(tables: readonly string[]): number {
    let n = 0;
    for (const t of tables) n += this.commits.get(t) ?? 0;
    return n;
  }

  /** Counts a commit that wrote `tables`. */
  committed(tables: Iterable<string>): void {
    for (const t of tables) this.commits.set(t, (this.commits.get(t) ?? 0) + 1);
  }
}

/**
 * A dialect whose driver tells `watch` the tables of every committed write: at the commit of
 * its transaction, or once the statement ran outside one (it committed by itself then). A
 * transaction rolled back counts nothing, nor do the writes rolled back to a savepoint; one whose
 * commit failed counts its tables all the same (a reader then asks once more than it needed to,
 * never once less).
 */
export class WatchedDialect implements Dialect {
  constructor(
    private readonly inner: Dialect,
    private readonly watch: WriteWatch,
  ) {}

  createDriver(): Driver {
    return new WatchedDriver(this.inner.createDriver(), this.watch);
  }

  createQueryCompiler(): QueryCompiler {
    return this.inner.createQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return this.inner.createAdapter();
  }

  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return this.inner.createIntrospector(db);
  }
}

class WatchedConnection implements DatabaseConnection {
  /** The tables written in the open transaction; undefined outside one. */
  written: Set<string> | undefined;

  constructor(
    readonly inner: DatabaseConnection,
    private readonly watch: WriteWatch,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.inner.executeQuery<R>(query);
    const table = writtenTable(query.sql);
    if (table !== undefined) {
      if (this.written) this.written.add(table);
      else this.watch.committed([table]);
    }
    return result;
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

type Savepoint = (
  connection: DatabaseConnection,
  name: string,
  compile: QueryCompiler['compileQuery'],
) => Promise<void>;

/**
 * The inner driver runs a transaction's statements (begin, commit, savepoints) on the connection
 * it is given: the wrapper, so Kysely's log sees them as before; only a connection's release
 * needs the inner driver's own object.
 */
class WatchedDriver implements Driver {
  /** One wrapper per connection of the inner driver, so Kysely sees the same object each time. */
  private readonly wrappers = new WeakMap<DatabaseConnection, WatchedConnection>();
  readonly savepoint?: Savepoint;
  readonly rollbackToSavepoint?: Savepoint;
  readonly releaseSavepoint?: Savepoint;

  constructor(
    private readonly inner: Driver,
    private readonly watch: WriteWatch,
  ) {
    // A savepoint remembers what its transaction had written; a rollback to it forgets the rest.
    const marked = new WeakMap<WatchedConnection, Map<string, Set<string>>>();
    const at = inner.savepoint;
    const back = inner.rollbackToSavepoint;
    const release = inner.releaseSavepoint;
    if (at)
      this.savepoint = async (c, name, compile) => {
        await at.call(inner, c, name, compile);
        const w = c as WatchedConnection;
        if (!w.written) return;
        let marks = marked.get(w);
        if (!marks) marked.set(w, (marks = new Map()));
        marks.set(name, new Set(w.written));
      };
    if (back)
      this.rollbackToSavepoint = async (c, name, compile) => {
        await back.call(inner, c, name, compile);
        const w = c as WatchedConnection;
        const mark = marked.get(w)?.get(name);
        if (mark && w.written) w.written = new Set(mark);
      };
    if (release)
      this.releaseSavepoint = async (c, name, compile) => {
        await release.call(inner, c, name, compile);
        marked.get(c as WatchedConnection)?.delete(name);
      };
  }

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.inner.acquireConnection();
    let wrapper = this.wrappers.get(connection);
    if (!wrapper) this.wrappers.set(connection, (wrapper = new WatchedConnection(connection, this.watch)));
    return wrapper;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const c = connection as WatchedConnection;
    await this.inner.beginTransaction(c, settings);
    c.written = new Set();
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as WatchedConnection;
    const written = c.written;
    c.written = undefined;
    try {
      await this.inner.commitTransaction(c);
    } finally {
      if (written && written.size > 0) this.watch.committed(written);
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as WatchedConnection;
    c.written = undefined;
    await this.inner.rollbackTransaction(c);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const c = connection as WatchedConnection;
    c.written = undefined;
    await this.inner.releaseConnection(c.inner);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}
