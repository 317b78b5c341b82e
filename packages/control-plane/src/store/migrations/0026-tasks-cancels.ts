import type { Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * Held tasks with a pending cancel request, found through an index of their own: the dispatcher
 * asks for them on every round, for every agent at once, and almost no task has one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('tasks_cancels').on('tasks').columns(['cancel_requested', 'state']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, 'tasks_cancels', 'tasks');
}
