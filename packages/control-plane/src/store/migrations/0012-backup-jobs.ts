import type { Kysely } from 'kysely';

/*
 * Backup jobs: ordered lists of instances backed up under one policy, their schedules, and the
 * history of their runs.
 *
 * backup_jobs.active_run_id is the one-run-at-a-time guard: a run starts only by a compare-and-set
 * of it from null, so neither a second `run` nor a scheduled fire on another replica can stack a
 * run on one still going. backup_job_members holds one row per instance of a run: its set
 * (OUTDATED, ONGOING, UPDATED, ERROR), its backup task and its error. A member is found by its
 * task when the task ends (task_id index); the job's current sets are each instance's latest
 * member row (job_id, instance_id index). backup_job_schedules counts the runs each schedule
 * started, for schedules that end after N runs.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('backup_jobs')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    // A JSON array of instance ids in backup order (at most 500).
    .addColumn('instance_ids', 'text', (c) => c.notNull())
    .addColumn('mode', 'varchar(16)', (c) => c.notNull())
    .addColumn('reset', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('keep_last', 'integer')
    .addColumn('fs_freeze', 'varchar(16)', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('execution', 'varchar(16)', (c) => c.notNull())
    .addColumn('locked', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('active_run_id', 'varchar(64)')
    .addColumn('last_run_id', 'varchar(64)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('backup_jobs_tenant').on('backup_jobs').columns(['tenant_id', 'id']).execute();
  await db.schema
    .createTable('backup_job_schedules')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('job_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('cron', 'varchar(200)', (c) => c.notNull())
    .addColumn('timezone', 'varchar(100)', (c) => c.notNull())
    .addColumn('end_after_runs', 'integer')
    .addColumn('end_at', 'bigint')
    .addColumn('runs', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('backup_job_schedules_job').on('backup_job_schedules').column('job_id').execute();
  await db.schema
    .createTable('backup_job_runs')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('job_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('trigger', 'varchar(16)', (c) => c.notNull())
    .addColumn('schedule_id', 'varchar(64)')
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('reset', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cancelled', 'integer', (c) => c.notNull().defaultTo(0))
    // Members not yet UPDATED or ERROR, kept by UPDATEs (which read the latest committed row on
    // MySQL): two tasks of a run ending in concurrent transactions cannot both miss the last one.
    .addColumn('outstanding', 'integer', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint')
    .execute();
  await db.schema.createIndex('backup_job_runs_job').on('backup_job_runs').columns(['job_id', 'id']).execute();
  await db.schema
    .createTable('backup_job_members')
    .addColumn('run_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('job_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('instance_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('set', 'varchar(16)', (c) => c.notNull())
    .addColumn('task_id', 'varchar(64)')
    .addColumn('error_code', 'varchar(64)')
    .addColumn('error_message', 'text')
    .addPrimaryKeyConstraint('backup_job_members_pk', ['run_id', 'position'])
    .execute();
  await db.schema.createIndex('backup_job_members_task').on('backup_job_members').column('task_id').execute();
  await db.schema
    .createIndex('backup_job_members_instance')
    .on('backup_job_members')
    .columns(['job_id', 'instance_id', 'run_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('backup_job_members').execute();
  await db.schema.dropTable('backup_job_runs').execute();
  await db.schema.dropTable('backup_job_schedules').execute();
  await db.schema.dropTable('backup_jobs').execute();
}
