import type { Kysely } from 'kysely';

/*
 * A provider connection's endpoint may hold a password (restic's rest-server takes its
 * credentials only in the URL). `endpoint` keeps the endpoint as the API shows it, the password
 * replaced by `***`; `endpoint_enc` the whole endpoint, sealed like credentials, when it held
 * one. Endpoints stored in clear before this are sealed at the next start (the key is not known
 * here).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('providers').addColumn('endpoint_enc', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('providers').dropColumn('endpoint_enc').execute();
}
