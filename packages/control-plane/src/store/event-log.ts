import type { Insertable, Transaction } from 'kysely';
import type { Db } from './db.js';
import type { Database, EventRow, TaskRow } from './schema.js';
import { template } from './compiled.js';

type Trx = Transaction<Database>;

/*
 * The writing end of the event log, shared by the repositories whose changes carry an event
 * (a task queued, cancelled, failed or lost commits with its event). It is not a repository: it
 * holds no handle and calls none; `event-repository.ts` owns the log's reads.
 */

/**
 * Transactions that ticked the event clock already (by their executor, which is one per
 * transaction, whatever handle it is reached through): its row stays locked until they commit.
 */
const ticked = new WeakSet<object>();
/** Events held back in a transaction to be written together (`holdEvents`), in the order given. */
const held = new WeakMap<Trx, Insertable<EventRow>[]>();

/** Events written together in `trx`: one clock tick (they commit as one), one insert, ids in the order given. */
export async function appendEvents(trx: Trx, rows: Insertable<EventRow>[]): Promise<void> {
  // What was held back comes first: ids follow the order the events were made in.
  await flushEvents(trx);
  await insertEvents(trx, rows);
}

/**
 * Holds events back to be written with the next write of events in `trx` (or `flushEvents`), in
 * one insert: a batch of agents' reports makes many. Any event written meanwhile in `trx` writes
 * these first, so ids still follow the order events were made in. The caller flushes before commit.
 */
export function holdEvents(trx: Trx, rows: Insertable<EventRow>[]): void {
  if (rows.length === 0) return;
  const list = held.get(trx);
  if (list) list.push(...rows);
  else held.set(trx, [...rows]);
}

/** Writes the events held back in `trx`, in one insert. */
export async function flushEvents(trx: Trx): Promise<void> {
  const rows = held.get(trx);
  if (!rows) return;
  held.delete(trx);
  await insertEvents(trx, rows);
}

/**
 * One insert. An agent's event is unique per (agent, spool seq): a re-sent one is skipped, so an
 * insert holding any is an insert-or-ignore (the other rows are written by the control plane
 * itself, whose columns fit).
 */
async function insertEvents(trx: Trx, rows: Insertable<EventRow>[]): Promise<void> {
  if (rows.length === 0) return;
  // Taken before every event insert: event ids then follow commit order (see migration 0002).
  await tickEventClock(trx);
  const insert = trx.insertInto('events').values(rows);
  await (rows.some((r) => r.sourceAgentId != null) ? insert.orIgnore() : insert).execute();
}

const TICK_EVENT_CLOCK = template((db) =>
  db
    .updateTable('eventClock')
    .set((eb) => ({ ticks: eb('ticks', '+', 1) }))
    .where('id', '=', 1),
);

/**
 * Locks the event clock's row for the rest of `trx` (once per transaction: the lock lasts until
 * commit). The clock is also the store's change mark: a change the RPO watch reads that writes no
 * event of its own (an instance's offering, an offering's SLA) ticks it too, after the change, so
 * a scheduler that finds the clock unmoved knows none committed since it last looked.
 */
export async function tickEventClock(trx: Db): Promise<void> {
  const key = trx.isTransaction ? trx.getExecutor() : undefined;
  if (key && ticked.has(key)) return;
  await TICK_EVENT_CLOCK.run(trx, {});
  if (key) ticked.add(key);
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
