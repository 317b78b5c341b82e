import { sql, type Kysely } from 'kysely';

/*
 * The other count quotas kept as counts, as the instances' are (migration 0035): a tenant's user
 * schedules and backup jobs in tenant_counts, and each job's schedules on its own row
 * (backup_jobs.schedule_count). A create's check counted up to 10,000 rows of the tenant with a
 * locking read, and the quotas' usage grouped every schedule of every job of the tenant (up to
 * 1,000,000 rows at the ceilings) to find the most any one job has. All filled here from the rows
 * as they stand.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    insert into tenant_counts (tenant_id, quota, used)
    select tenant_id, 'userSchedules', count(*) from user_schedules group by tenant_id`.execute(db);
  await sql`
    insert into tenant_counts (tenant_id, quota, used)
    select tenant_id, 'jobs', count(*) from backup_jobs group by tenant_id`.execute(db);
  await db.schema
    .alterTable('backup_jobs')
    .addColumn('schedule_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`
    update backup_jobs set schedule_count =
      (select count(*) from backup_job_schedules s where s.job_id = backup_jobs.id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('backup_jobs').dropColumn('schedule_count').execute();
  await sql`delete from tenant_counts where quota in ('userSchedules', 'jobs')`.execute(db);
}
