import { MysqlAdapter, sql, type Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * The other count quotas kept as counts, as the instances' are (migration 0035): a tenant's user
 * schedules and backup jobs in tenant_counts, and each job's schedules and members on its own row
 * (backup_jobs.schedule_count, member_count). A create's check counted up to 10,000 rows of the
 * tenant with a locking read; the quotas' usage grouped every schedule of every job of the tenant
 * (up to 1,000,000 rows at the ceilings) to find the most any one job has, and measured every
 * job's list of members (10,000 lists of 500: 85 ms on SQLite, 2.2 s on MariaDB). All filled here
 * from the rows as they stand.
 */
const INDEXES = [
  ['backup_jobs_tenant_schedules', 'schedule_count'],
  ['backup_jobs_tenant_members', 'member_count'],
] as const;

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
  await db.schema
    .alterTable('backup_jobs')
    .addColumn('member_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const members = mysql ? sql`json_length(instance_ids)` : sql`json_array_length(instance_ids)`;
  await sql`
    update backup_jobs set
      schedule_count = (select count(*) from backup_job_schedules s where s.job_id = backup_jobs.id),
      member_count = ${members}`.execute(db);
  // The most any one of a tenant's jobs has, from the end of an index: a job's row holds its list
  // of members, which SQLite reads through to reach a column after it.
  for (const [index, column] of INDEXES)
    await db.schema.createIndex(index).on('backup_jobs').columns(['tenant_id', column]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const [index] of INDEXES) await dropIndex(db, index, 'backup_jobs');
  await db.schema.alterTable('backup_jobs').dropColumn('member_count').execute();
  await db.schema.alterTable('backup_jobs').dropColumn('schedule_count').execute();
  await sql`delete from tenant_counts where quota in ('userSchedules', 'jobs')`.execute(db);
}
