import { MysqlAdapter, sql, type Kysely } from 'kysely';

/*
 * SQLite only: each tenant's queued tasks in the order the dispatcher takes them (priority
 * highest first, then by id), and only the queued ones (a partial index), so the queue's head can
 * read each tenant's first few tasks instead of ranking the whole queue (see QueueRepository's
 * queueHead). SQLite runs its statements on the control plane's own thread, where ranking 50,000
 * queued tasks took about 100 ms that every tenant's requests waited through. MySQL/MariaDB rank
 * on the server, off that thread, and have no partial indexes: nothing changes there.
 */
const INDEX = 'tasks_tenant_queued';

function onSqlite(db: Kysely<unknown>): boolean {
  return !(db.getExecutor().adapter instanceof MysqlAdapter);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (onSqlite(db))
    await sql`create index ${sql.id(INDEX)} on tasks (tenant_id, priority desc, id) where state = 'queued'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (onSqlite(db)) await sql`drop index ${sql.id(INDEX)}`.execute(db);
}
