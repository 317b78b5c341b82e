import type { Kysely } from 'kysely';

/*
 * A sync that would mark more than a set share of a provider's restore points vanished at once
 * marks none of them and waits for an operator.
 *
 * provider_syncs.held_since: when the provider's syncs began to be held (null: the last applied
 * sync was not). provider_syncs.confirm_task_id: the sync task an operator confirmed (POST
 * .../sync?confirm=true); its listing marks vanished whatever the share.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // One column per statement: SQLite adds one at a time.
  await db.schema.alterTable('provider_syncs').addColumn('held_since', 'bigint').execute();
  await db.schema.alterTable('provider_syncs').addColumn('confirm_task_id', 'varchar(64)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('provider_syncs').dropColumn('confirm_task_id').execute();
  await db.schema.alterTable('provider_syncs').dropColumn('held_since').execute();
}
