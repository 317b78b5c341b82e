import { sql, type Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * Provider sync.
 *
 * backups.vanished_at: set when a sync found the restore point gone from its provider (the record
 * stays, marked; cleared when a later sync lists the point again). The offering index serves the
 * lookup of a provider's records.
 *
 * provider_syncs: one row per provider connection. active_task_id names the sync task queued or
 * running for it, set by a compare-and-set (only while null or naming a task that ended), so no
 * number of requests and replicas queues two syncs of one provider. The other columns hold the
 * last applied sync's drift report (JSON; mediumtext on MySQL, since a report may list thousands
 * of ids).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('backups').addColumn('vanished_at', 'bigint').execute();
  await db.schema.createIndex('backups_offering').on('backups').column('offering_id').execute();
  await db.schema
    .createTable('provider_syncs')
    .addColumn('provider_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('active_task_id', 'varchar(64)')
    .addColumn('task_id', 'varchar(64)')
    .addColumn('synced_at', 'bigint')
    .addColumn('report', sql`mediumtext`)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('provider_syncs').execute();
  await dropIndex(db, 'backups_offering', 'backups');
  await db.schema.alterTable('backups').dropColumn('vanished_at').execute();
}
