import type { Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * The API's lists of tasks and restore points go newest first by id (`where tenant_id = ? order
 * by id desc limit n`, the same by instance). Their indexes ran by creation time, which no query
 * orders by, so every page read every row of the tenant or instance and sorted them: a tenant
 * with a year of tasks made each page of its list cost a read of all of them (on SQLite, on the
 * event loop every other tenant waits on). By id, a page reads its own rows and no more. The
 * equality lookups on the first column are served as before. Tasks also get an index by
 * (instance, id) beside `tasks_instance` (instance, state), which the queue's checks of an
 * instance's running tasks need: a tenant's page of one instance's tasks went through the tenant's
 * index, and read all the tenant's tasks newer than the instance's.
 */
const REPLACED = [
  { table: 'tasks', old: 'tasks_tenant', index: 'tasks_tenant_newest', column: 'tenant_id' },
  { table: 'backups', old: 'backups_tenant', index: 'backups_tenant_newest', column: 'tenant_id' },
  { table: 'backups', old: 'backups_instance', index: 'backups_instance_newest', column: 'instance_id' },
] as const;

const ADDED = { table: 'tasks', index: 'tasks_instance_newest', column: 'instance_id' } as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const r of REPLACED) {
    // The new one first: a lookup by the first column always has an index.
    await db.schema.createIndex(r.index).on(r.table).columns([r.column, 'id']).execute();
    await dropIndex(db, r.old, r.table);
  }
  await db.schema.createIndex(ADDED.index).on(ADDED.table).columns([ADDED.column, 'id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, ADDED.index, ADDED.table);
  for (const r of REPLACED) {
    await db.schema.createIndex(r.old).on(r.table).columns([r.column, 'created_at']).execute();
    await dropIndex(db, r.index, r.table);
  }
}
