import {
  SqliteDialect,
  SqliteDriver,
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  type SqliteDialectConfig,
} from 'kysely';

/** What the reader connection needs of a SQLite database: prepared statements that say whether they only read. */
export interface ReaderDatabase {
  prepare(sql: string): { readonly readonly: boolean; all(parameters: readonly unknown[]): unknown[] };
  close(): void;
}

/** The writer's database as the reader's path uses it while no transaction is open on it. */
export interface WriterDatabase extends ReaderDatabase {
  readonly inTransaction: boolean;
}

/** Statements the reader may take: the ones that start as a query does. Anything else goes to the writer. */
const QUERY = /^\s*(select|with)\b/i;

/**
 * A SQLite dialect on two connections to one database file: the writer, which Kysely's own
 * driver runs as it always does (one connection, taken by one transaction or statement at a
 * time), and a reader for the queries that run outside a transaction.
 *
 * On one connection, a read waits while a transaction holds it: behind a group commit of a
 * few dozen writing requests, a tenant's GET or the dispatcher's look at the queue waited for
 * all of them. In WAL mode a second connection reads the last committed state while the writer's
 * transaction is open, so such a read runs at once and sees what has been committed, as it would
 * have after waiting, less the writes still uncommitted, which no read outside their
 * transaction may see anyway. A read inside a transaction stays on the writer and sees that
 * transaction's own writes.
 *
 * A connection handed out by this driver takes the writer only when it needs it: for a
 * transaction, a statement that writes, or anything after either (until it is released), so
 * every statement of a transaction runs on the writer in order. The reader only takes
 * statements that begin as a query and that SQLite says do not write (`query_only` is set on it
 * too). Both run on the event loop, as better-sqlite3 does.
 *
 * While no transaction is open on the writer, such a read runs on the writer instead: it sees
 * the same committed state there (a statement runs to its end on the event loop, so no write can
 * be half done), and it finds its pages in the writer's cache. The reader's cache is emptied each
 * time it finds the database changed since its last read, which under a steady write load is
 * nearly every read: a short read there cost two to three times as much.
 */
export class ReadingSqliteDialect extends SqliteDialect {
  constructor(
    private readonly writer: SqliteDialectConfig & { database: WriterDatabase },
    private readonly reader: ReaderDatabase,
  ) {
    super(writer);
  }

  override createDriver(): Driver {
    return new ReadingSqliteDriver(new SqliteDriver(this.writer), this.writer.database, this.reader);
  }
}

class DeferredConnection implements DatabaseConnection {
  /** The writer, once this connection took it; kept until the connection is released. */
  writer: DatabaseConnection | undefined;

  constructor(private readonly driver: ReadingSqliteDriver) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (!this.writer && QUERY.test(query.sql)) {
      const stmt = this.driver.readerNow().prepare(query.sql);
      if (stmt.readonly) return { rows: stmt.all(query.parameters) as R[] };
    }
    return (await this.driver.writerOf(this)).executeQuery<R>(query);
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    // Nothing of ours streams; a stream takes the writer, as it would on Kysely's own driver.
    yield* (await this.driver.writerOf(this)).streamQuery<R>(query, chunkSize);
  }
}

class ReadingSqliteDriver implements Driver {
  /** Connections released, handed out again (Kysely wraps each new one it sees once, for its log). */
  private readonly free: DeferredConnection[] = [];

  constructor(
    private readonly inner: SqliteDriver,
    private readonly writer: WriterDatabase,
    private readonly reader: ReaderDatabase,
  ) {}

  /** Where a read outside a transaction runs now: the writer while no transaction is open on it. */
  readerNow(): ReaderDatabase {
    return this.writer.inTransaction ? this.reader : this.writer;
  }

  init(): Promise<void> {
    return this.inner.init();
  }

  acquireConnection(): Promise<DatabaseConnection> {
    return Promise.resolve(this.free.pop() ?? new DeferredConnection(this));
  }

  /** The writer for `connection`, waiting for it if another holds it. */
  async writerOf(connection: DeferredConnection): Promise<DatabaseConnection> {
    return (connection.writer ??= await this.inner.acquireConnection());
  }

  // Kysely's driver runs these as statements on the connection it is given: here that is this
  // driver's connection (as Kysely logs it), and none of them is a query, so each goes to the writer.
  beginTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.beginTransaction(connection);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(connection);
  }

  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return this.inner.savepoint(connection, name, compile);
  }

  rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.inner.rollbackToSavepoint(connection, name, compile);
  }

  releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.inner.releaseSavepoint(connection, name, compile);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const deferred = connection as DeferredConnection;
    if (deferred.writer) {
      deferred.writer = undefined;
      await this.inner.releaseConnection();
    }
    this.free.push(deferred);
  }

  async destroy(): Promise<void> {
    await this.inner.destroy();
    this.reader.close();
  }
}
