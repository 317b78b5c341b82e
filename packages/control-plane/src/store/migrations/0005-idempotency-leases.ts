import { MysqlAdapter, sql, type Kysely } from 'kysely';
import { createIdempotencyKeys } from './0001-initial.js';

/*
 * Idempotency records belong to the API token that made them (not to its tenant), and an
 * unfinished claim holds a lease of seconds: a request cut off by a crash leaves a placeholder
 * that the next retry takes over once the lease has run out. The records are a 24-hour cache, so
 * the old table is replaced rather than converted.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('idempotency_keys').ifExists().execute();
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('principal_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('idem_key', 'varchar(255)', (c) => c.notNull())
    .addColumn('request_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('location', 'text')
    .addColumn('claim_token', 'varchar(64)', (c) => c.notNull())
    .addColumn('lease_expires_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['principal_id', 'idem_key'])
    .execute();
  // Keys compare byte for byte, as on SQLite: "Key" and "key" are two keys.
  if (db.getExecutor().adapter instanceof MysqlAdapter) {
    await sql`alter table idempotency_keys modify idem_key varchar(255) character set utf8mb4 collate utf8mb4_bin not null`.execute(
      db,
    );
  }
}

/** The table as it was before, empty: its records are a cache, and the old shape cannot hold the new ones. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('idempotency_keys').ifExists().execute();
  await createIdempotencyKeys(db);
}
