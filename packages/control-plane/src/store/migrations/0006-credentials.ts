import { sql, type Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * Credentials that can be retired.
 *
 * api_tokens.source tells the one token taken from CAIRN_ADMIN_TOKEN ('config') from tokens minted
 * through the API ('api'), so a new configured value replaces only the old configured one. Rows
 * written by the earlier bootstrap carry its fixed name and are marked here, so the next start
 * retires every stale configured value at once.
 *
 * agents.revoked_at is a soft delete: tasks and events keep naming the agent. An agent's pending
 * credential (hash to authenticate, sealed secret to send again) lives beside its current one
 * until the agent has authenticated with it. SQLite takes one column per ALTER TABLE.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('api_tokens')
    .addColumn('source', 'varchar(16)', (c) => c.notNull().defaultTo('api'))
    .execute();
  await sql`update api_tokens set source = 'config' where name = 'CAIRN_ADMIN_TOKEN' and role = 'sp-admin'`.execute(db);
  await db.schema.alterTable('agents').addColumn('revoked_at', 'bigint').execute();
  await db.schema.alterTable('agents').addColumn('pending_credential_hash', 'varchar(64)').execute();
  await db.schema.alterTable('agents').addColumn('pending_credential_enc', 'text').execute();
  await db.schema.alterTable('agents').addColumn('rotation_requested_at', 'bigint').execute();
  await db.schema.alterTable('agents').addColumn('credential_rotated_at', 'bigint').execute();
  await db.schema
    .createIndex('agents_pending_credential_hash')
    .on('agents')
    .column('pending_credential_hash')
    .unique()
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, 'agents_pending_credential_hash', 'agents');
  for (const column of [
    'credential_rotated_at',
    'rotation_requested_at',
    'pending_credential_enc',
    'pending_credential_hash',
    'revoked_at',
  ]) {
    await db.schema.alterTable('agents').dropColumn(column).execute();
  }
  await db.schema.alterTable('api_tokens').dropColumn('source').execute();
}
