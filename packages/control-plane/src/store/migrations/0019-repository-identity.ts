import type { Kysely } from 'kysely';

/*
 * The identity of the repository a provider connection reached (restic's repository id),
 * recorded at its first contact and sent with every task: the plugin then fails an operation that
 * finds another repository there (an unmounted disk, a repository made anew) instead of backing
 * up into it or reading its listing as every earlier point vanished. Null until recorded, or
 * after an SP admin cleared it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('providers').addColumn('repository_identity', 'varchar(255)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('providers').dropColumn('repository_identity').execute();
}
