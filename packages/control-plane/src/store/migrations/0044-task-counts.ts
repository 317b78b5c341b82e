import { sql, type Kysely } from 'kysely';

/*
 * Ended tasks kept as a count per state and kind (`task_counts`), which `/metrics` reports in
 * `cairn_tasks`: it counted every task of the store for each refresh (1.1-1.3 s on SQLite at 2
 * million tasks, blocking the process meanwhile, and a service keeps tens of millions for its
 * history limit). Moved by every end of a task and by the history sweep. Filled here from the
 * tasks as they stand.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('task_counts')
    .addColumn('state', 'varchar(32)', (c) => c.notNull())
    .addColumn('kind', 'varchar(32)', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('task_counts_pk', ['state', 'kind'])
    .execute();
  await sql`
    insert into task_counts (state, kind, n)
    select state, kind, count(*) from tasks
    where state in ('succeeded', 'failed', 'cancelled', 'lost') group by state, kind`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('task_counts').execute();
}
