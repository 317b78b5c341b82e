import type { Kysely } from 'kysely';

/*
 * Provider-side schedules: who fires an instance's SLA backups, and what it waits for.
 *
 * instances.schedule_owner: null (no provider was asked: Cairn fires), 'cairn' (the provider left
 * the clock to Cairn) or 'provider' (the backup system runs the schedule itself; Cairn fires no
 * SLA backups). schedule_state: null or one of configuring, reconfiguring, deconfiguring,
 * configured, failed. schedule_task_id: the configure-schedule or deconfigure-schedule task the
 * state waits for (or last waited for); only that task's end moves the instance, so a late answer
 * to an older request changes nothing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').addColumn('schedule_owner', 'varchar(16)').execute();
  await db.schema.alterTable('instances').addColumn('schedule_state', 'varchar(16)').execute();
  await db.schema.alterTable('instances').addColumn('schedule_task_id', 'varchar(64)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').dropColumn('schedule_task_id').execute();
  await db.schema.alterTable('instances').dropColumn('schedule_state').execute();
  await db.schema.alterTable('instances').dropColumn('schedule_owner').execute();
}
