import type { Kysely } from 'kysely';

/*
 * Schedules and their fires.
 *
 * user_schedules: at most one per instance (the instance id is the key). schedule_fires is the
 * exactly-once record: a fire is claimed by inserting (schedule key, fire time) before any task is
 * made, and the primary key lets only one insert succeed, whichever replica or restart tries. The
 * schedule key is `user:<instance id>` or `sla:<offering id>`; only its latest fire is kept.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('user_schedules')
    .addColumn('instance_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('cron', 'varchar(200)', (c) => c.notNull())
    .addColumn('timezone', 'varchar(100)', (c) => c.notNull())
    .addColumn('keep_last', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('schedule_fires')
    .addColumn('schedule_key', 'varchar(80)', (c) => c.notNull())
    .addColumn('fire_at', 'bigint', (c) => c.notNull())
    .addColumn('missed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('schedule_fires_pk', ['schedule_key', 'fire_at'])
    .execute();
  // When an offering's SLA was last set, by the scheduler's clock: its fire times count from there.
  await db.schema.alterTable('offerings').addColumn('sla_set_at', 'bigint').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('offerings').dropColumn('sla_set_at').execute();
  await db.schema.dropTable('schedule_fires').execute();
  await db.schema.dropTable('user_schedules').execute();
}
