import type { Insertable, Transaction } from 'kysely';
import type { Database, EventRow, TaskRow } from './schema.js';

type Trx = Transaction<Database>;

/*
 * The writing end of the event log, shared by the repositories whose changes carry an event
 * (a task queued, cancelled, failed or lost commits with its event). It is not a repository: it
 * holds no handle and calls none; `event-repository.ts` owns the log's reads.
 */

/** Events written together in `trx`: one clock tick (they commit as one), one insert, ids in the order given. */
export async function appendEvents(trx: Trx, rows: Insertable<EventRow>[]): Promise<void> {
  if (rows.length === 0) return;
  // Taken before every event insert: event ids then follow commit order (see migration 0002).
  await tickEventClock(trx);
  await trx.insertInto('events').values(rows).execute();
}

export async function tickEventClock(trx: Trx): Promise<void> {
  await trx
    .updateTable('eventClock')
    .set((eb) => ({ ticks: eb('ticks', '+', 1) }))
    .where('id', '=', 1)
    .execute();
}

/** The event row about `task`; `data` is stored as JSON. */
export function taskEvent(
  task: TaskRow,
  type: string,
  message: string,
  now: number,
  data?: object,
): Insertable<EventRow> {
  return {
    tenantId: task.tenantId,
    type,
    at: now,
    message,
    taskId: task.id,
    instanceId: task.instanceId,
    jobId: null,
    agentId: task.agentId,
    data: data === undefined ? null : JSON.stringify(data),
    sourceAgentId: null,
    sourceSeq: null,
  };
}

/** An event about `task`, written in `trx`. */
export async function appendTaskEvent(
  trx: Trx,
  task: TaskRow,
  type: string,
  message: string,
  now: number,
  data?: object,
): Promise<void> {
  await appendEvents(trx, [taskEvent(task, type, message, now, data)]);
}
