import type { Kysely } from 'kysely';

/*
 * Held tasks with a pending cancel request, found through an index of their own: the dispatcher
 * asks for them on every round, for every agent at once, and almost no task has one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('tasks_cancels').on('tasks').columns(['cancel_requested', 'state']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('tasks_cancels').on('tasks').execute();
}
