import type { Transaction } from 'kysely';
import { HELD_STATES, type TaskState } from '../domain/task.js';
import type { Db } from './db.js';
import { upsert } from './compiled.js';
import { writeAtCommit } from './event-log.js';
import type { Database } from './schema.js';

type Trx = Transaction<Database>;

/*
 * How many tasks the store holds per state and kind, for `/metrics`, without counting the tasks
 * table: ended tasks are most of it (a service keeps them for its history limit, millions), and a
 * count of them all took over a second at 2 million tasks. Ended tasks are kept as counts in
 * `task_counts`, moved by the transaction that ends a task (+1) and by the history sweep's that
 * forgets it (−1); a task's state never changes after its end, nor its kind. The tasks not ended
 * yet (queued, or held by an agent) are counted through the (state, …) index: as many as are
 * waiting or running, not as many as were ever made.
 */

/** Tasks per state and kind, as one row each. */
export interface TaskCount {
  state: string;
  kind: string;
  n: number;
}

/** Ends counted per transaction (by executor), written with its events as it commits. */
const pending = new WeakMap<object, TaskKey[]>();

/** A task's state and kind: what the kept counts are by. */
export interface TaskKey {
  state: string;
  kind: string;
}

/**
 * Counts a task of `kind` ended as `state` in `trx`. The ends a transaction gathers are written
 * with its events as it commits (after the event clock's tick every ending transaction takes
 * anyway), one statement per state and kind: a report tick ending many tasks writes one or two.
 */
export function countEnded(trx: Trx, kind: string, state: TaskState): void {
  const key = trx.getExecutor();
  const ends = pending.get(key);
  if (ends) {
    ends.push({ state, kind });
    return;
  }
  const gathered = [{ state, kind }];
  pending.set(key, gathered);
  writeAtCommit(trx, async (t) => {
    pending.delete(key);
    await moveTaskCounts(t, gathered, 1);
  });
}

/**
 * Moves the kept counts of ended tasks by `by` for each of `tasks` (−1: forgotten), in `trx`: one
 * statement per state and kind, in a fixed order, so two transactions moving the same rows lock
 * them in the same order.
 */
export async function moveTaskCounts(trx: Db, tasks: readonly TaskKey[], by: 1 | -1): Promise<void> {
  const moves = new Map<string, TaskCount>();
  for (const { state, kind } of tasks) {
    const name = `${state}\u0000${kind}`;
    const move = moves.get(name);
    if (move) move.n += by;
    else moves.set(name, { state, kind, n: by });
  }
  const sorted = [...moves.values()].sort((a, b) => compare(a.state, b.state) || compare(a.kind, b.kind));
  for (const move of sorted) await upsert(trx, 'taskCounts', move, ['state', 'kind'], { n: 'add' });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** States a task is in before its end: counted from the tasks themselves. */
const LIVE_STATES: readonly TaskState[] = ['queued', ...HELD_STATES];

/** Tasks per state and kind: the ended ones as kept, the others counted. Rows of 0 left out. */
export async function taskCounts(db: Db): Promise<TaskCount[]> {
  const [kept, live] = await Promise.all([
    db.selectFrom('taskCounts').select(['state', 'kind', 'n']).where('n', '<>', 0).execute(),
    db
      .selectFrom('tasks')
      .select(['state', 'kind', (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', 'in', LIVE_STATES)
      .groupBy(['state', 'kind'])
      .execute(),
  ]);
  return [...live, ...kept].map((r) => ({ state: r.state, kind: r.kind, n: Number(r.n) }));
}
