import type { Kysely } from 'kysely';

/*
 * The history sweep's own rows. Nothing forgot ended tasks, their progress reports or the event
 * log: at 1,000 running tasks reporting once a second, 86 million progress rows a day. The sweep
 * forgets each after the service provider's limit, and tells a row's age by these marks (the
 * newest event and progress ids at a time of the control plane's clock), never by a time an agent
 * reported. One mark per interval of the sweep (`interval_at`, the claim of that interval's pass);
 * `history_state` holds how far each log has been forgotten (one row).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('history_marks')
    .addColumn('interval_at', 'bigint', (c) => c.primaryKey())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('last_event_id', 'bigint', (c) => c.notNull())
    .addColumn('last_progress_id', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('history_state')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('events_through', 'bigint', (c) => c.notNull())
    .addColumn('progress_through', 'bigint', (c) => c.notNull())
    .execute();
  await db
    .insertInto('history_state' as never)
    .values({ id: 1, events_through: 0, progress_through: 0 } as never)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('history_state').execute();
  await db.schema.dropTable('history_marks').execute();
}
