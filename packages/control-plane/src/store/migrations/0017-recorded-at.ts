import { sql, type Kysely } from 'kysely';

/*
 * backups.recorded_at: when the control plane recorded a restore point (epoch ms), what keep-last
 * ranks by. created_at stays the time shown (the provider's own for a point a sync found), which
 * a host with a wrong clock may have put in the future. Existing records get their created_at,
 * but never later than this migration's now, so a record already dated ahead cannot outrank the
 * backups made from here on.
 */
export async function up(db: Kysely<unknown>, now: number): Promise<void> {
  await db.schema
    .alterTable('backups')
    .addColumn('recorded_at', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update backups set recorded_at = case when created_at < ${now} then created_at else ${now} end`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('backups').dropColumn('recorded_at').execute();
}
