import type { Kysely } from 'kysely';

/*
 * One row per periodic duty that one replica runs for all (the RPO watch, the provider rounds,
 * the job-history sweep): who holds it and until when. A replica takes or renews it with one
 * conditional update (holder = me, or expired), so two replicas never both hold it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('duty_leases')
    .addColumn('duty', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('holder', 'varchar(128)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('held_since', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('duty_leases').ifExists().execute();
}
