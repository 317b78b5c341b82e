import type { Transaction } from 'kysely';
import type { Database } from './schema.js';

/**
 * Forgets a deleted instance's row in `newest_backups` (its newest record and latest trusted
 * time, kept by BackupRepository as its records change): an instance is deleted only once it has
 * no records, so the row says nothing any more, and left it would stay for good.
 */
export async function forgetNewest(trx: Transaction<Database>, instanceId: string): Promise<void> {
  await trx.deleteFrom('newestBackups').where('instanceId', '=', instanceId).execute();
}
