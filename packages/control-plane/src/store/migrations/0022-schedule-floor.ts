import type { Kysely } from 'kysely';

/*
 * How often a tenant's schedule of an offering's instances may fire: the fewest seconds between
 * two fires, checked when a user or job schedule is set or changed. Existing offerings get the
 * default of 900 (every 15 minutes); schedules already stored keep firing as they are.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('offerings')
    .addColumn('min_user_schedule_interval_s', 'integer', (c) => c.notNull().defaultTo(900))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('offerings').dropColumn('min_user_schedule_interval_s').execute();
}
