import { MysqlAdapter, type Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * MySQL/MariaDB only: a tenant's tasks by state, for the locking count a backup's start makes of
 * the tenant's backups in flight (see QuotaRepository). InnoDB locks every row a locking read
 * reads: without an index that starts at the tenant and its states, that count read every
 * tenant's tasks (MariaDB's planner took the whole table with a handful of tenants), so one
 * tenant's backup start waited for any transaction holding another tenant's task. SQLite takes
 * no row locks (one writer at a time): nothing changes there.
 */
const INDEX = 'tasks_tenant_state';

function onMysql(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof MysqlAdapter;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (onMysql(db)) await db.schema.createIndex(INDEX).on('tasks').columns(['tenant_id', 'state']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (onMysql(db)) await dropIndex(db, INDEX, 'tasks');
}
