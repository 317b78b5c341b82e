import type { Insertable, Transaction } from 'kysely';
import type { Db } from './db.js';
import type { Database, EventRow, TaskRow } from './schema.js';
import { insertRows, template } from './compiled.js';

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

/** Transactions (by executor) whose opener writes their held events before it commits. */
const writing = new WeakSet<object>();

/**
 * Called by the two places that open transactions (`transact`, the request transaction) as they
 * open one: they call {@link writeHeldEvents} before its commit. An event made in any other
 * transaction is refused, rather than held and never written.
 */
export function holdsEvents(trx: Trx): void {
  writing.add(trx.getExecutor());
}

/** A write of events held back to the end of its transaction: rows, or a statement of its own. */
type HeldWrite = Insertable<EventRow>[] | ((trx: Trx) => Promise<void>);
/** What each transaction (by executor) will write to the log just before it commits, in order. */
const held = new WeakMap<object, HeldWrite[]>();

/**
 * Events made in `trx`, written when it commits ({@link writeHeldEvents}), after every event made
 * before them in it: ids follow the order events were made in. Writing them last keeps the event
 * clock's row, which every event-writing transaction locks until it commits, locked for as short a
 * time as the store allows: from the clock's tick through the events' insert to the commit.
 */
export function appendEvents(trx: Trx, rows: Insertable<EventRow>[]): void {
  if (rows.length === 0) return;
  const list = heldIn(trx);
  const last = list?.at(-1);
  if (Array.isArray(last)) last.push(...rows);
  else if (list) list.push([...rows]);
  else held.set(trx.getExecutor(), [[...rows]]);
}

/**
 * A statement of its own (`write`) held back to the end of `trx` like {@link appendEvents}' rows
 * and written among them in the order held, after the event clock's tick: events a statement
 * writes, or a count that moves with them (the ended tasks' counts, store/task-counts.ts).
 */
export function writeAtCommit(trx: Trx, write: (trx: Trx) => Promise<void>): void {
  const list = heldIn(trx);
  if (list) list.push(write);
  else held.set(trx.getExecutor(), [write]);
}

/** What `trx` holds back so far; refuses a transaction whose opener would never write it. */
function heldIn(trx: Trx): HeldWrite[] | undefined {
  const key = trx.getExecutor();
  if (!writing.has(key)) {
    throw new Error('an event was made in a transaction not opened by transact() or the request transaction');
  }
  return held.get(key);
}

/**
 * Writes what {@link appendEvents} held back in `trx`: one clock tick, then one insert per run of
 * rows. The two places that commit (`transact` and the request transaction) call it last.
 */
export async function writeHeldEvents(trx: Trx): Promise<void> {
  const key = trx.getExecutor();
  const list = held.get(key);
  if (!list) return;
  held.delete(key);
  // Taken before every event insert: event ids then follow commit order (see migration 0002).
  await tickEventClock(trx);
  for (const write of list) await (Array.isArray(write) ? insertEvents(trx, write) : write(trx));
}

/**
 * One insert. An agent's event is unique per (agent, spool seq): a re-sent one is skipped, so an
 * insert holding any is an insert-or-ignore (the other rows are written by the control plane
 * itself, whose columns fit).
 */
async function insertEvents(trx: Trx, rows: Insertable<EventRow>[]): Promise<void> {
  await insertRows(trx, 'events', rows, { orIgnore: rows.some((r) => r.sourceAgentId != null) });
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

/** An event about `task`, written when `trx` commits. */
export function appendTaskEvent(
  trx: Trx,
  task: TaskRow,
  type: string,
  message: string,
  now: number,
  data?: object,
): void {
  appendEvents(trx, [taskEvent(task, type, message, now, data)]);
}
