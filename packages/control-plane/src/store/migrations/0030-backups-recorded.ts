import type { Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * An instance's records by recorded time (the id breaks ties, as keep-last ranks them): a backup's
 * end reads the latest recorded time of its instance, and the newest record is the parent of the
 * next incremental. Without it both read every record of the instance.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('backups_recorded').on('backups').columns(['instance_id', 'recorded_at', 'id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, 'backups_recorded', 'backups');
}
