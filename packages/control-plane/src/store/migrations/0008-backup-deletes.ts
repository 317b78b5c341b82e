import type { Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * Deleting restore points through the provider.
 *
 * backups.delete_task_id names the delete-backup task that is removing this record's restore
 * point. It is set by a compare-and-set (only while it is null or names a task that ended), so
 * retention and DELETE /v1/backups/{id} never queue two deletes of one point, on any number of
 * replicas. The record itself goes when that task succeeds. The index serves the parent lookup
 * of chain protection.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('backups').addColumn('delete_task_id', 'varchar(64)').execute();
  await db.schema.createIndex('backups_parent').on('backups').column('parent_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, 'backups_parent', 'backups');
  await db.schema.alterTable('backups').dropColumn('delete_task_id').execute();
}
