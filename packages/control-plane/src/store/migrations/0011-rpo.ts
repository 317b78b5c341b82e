import type { Kysely } from 'kysely';

/*
 * The RPO watch.
 *
 * rpo_state holds one row per instance whose newest restore point is older than its offering's
 * rpoMinutes: the row is the breach. It is inserted (insert-or-ignore on the instance id) by the
 * writer that raises `rpo.breached` and deleted (compare-and-set on breached_at) by the one that
 * raises `rpo.met`, each in the transaction of its event, so replicas and restarts raise each
 * event once. instances.offering_set_at is when the instance got its offering, by the
 * scheduler's clock: an instance without a restore point is measured from there (or from the
 * SLA's sla_set_at, whichever is later).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rpo_state')
    .addColumn('instance_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('rpo_minutes', 'integer', (c) => c.notNull())
    .addColumn('last_backup_at', 'bigint')
    .addColumn('breached_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rpo_state_tenant').on('rpo_state').column('tenant_id').execute();
  await db.schema.alterTable('instances').addColumn('offering_set_at', 'bigint').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').dropColumn('offering_set_at').execute();
  await db.schema.dropTable('rpo_state').execute();
}
