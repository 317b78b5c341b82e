import type { Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * Each schedule's next fire time, indexed, so a scheduler tick reads only the schedules that are
 * due. It is a column on each schedule's own row (user_schedules, offerings for their SLA,
 * backup_job_schedules) rather than a table of its own: it then goes with its schedule (nothing
 * to keep in step on delete), and "not computed yet" is NULL, which the same index finds. NULL
 * is what every existing row gets here and what a create or change of a schedule writes: the next
 * tick computes it from the schedule and its last claimed fire (counting any fires missed), so no
 * schedule is skipped. The claim in schedule_fires stays the guard against a double or dropped
 * fire between replicas; the column is moved forward in the transaction that claims.
 */
const TABLES = ['user_schedules', 'offerings', 'backup_job_schedules'] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) {
    await db.schema.alterTable(table).addColumn('next_fire_at', 'bigint').execute();
    await db.schema.createIndex(`${table}_next_fire_at`).on(table).column('next_fire_at').execute();
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) {
    await dropIndex(db, `${table}_next_fire_at`, table);
    await db.schema.alterTable(table).dropColumn('next_fire_at').execute();
  }
}
