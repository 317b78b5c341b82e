import type { Kysely } from 'kysely';

/*
 * The connection a provider connection names as its export target (another connection of the
 * same zone, with no export target of its own): sent with each of its tasks, as it is then. Null:
 * none. No foreign key: the catalog refuses deleting a connection another one names.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('providers').addColumn('export_to', 'varchar(64)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('providers').dropColumn('export_to').execute();
}
