import type { Kysely } from 'kysely';

/*
 * A job run's `outstanding` counter goes: whether a run is over is read from its members' sets
 * (domain/job-run.ts runFinished), and the counter had been written 0 since. Nothing reads it.
 * A replica of an earlier version writes the column, so every replica is upgraded together (see
 * "Upgrades" in docs/operations.md); an earlier version refuses to start on a database migrated
 * past what it knows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('backup_job_runs').dropColumn('outstanding').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('backup_job_runs')
    .addColumn('outstanding', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
