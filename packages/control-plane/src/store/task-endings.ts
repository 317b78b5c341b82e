import type { Transaction } from 'kysely';
import type { TaskEnd } from '../domain/task.js';
import type { Database, TaskRow } from './schema.js';
import { countEnded } from './task-counts.js';

export type { TaskEnd } from '../domain/task.js';

/** Told of a task's end inside the transaction that ended it. */
export type TaskEndHook = (trx: Transaction<Database>, task: TaskRow, end: TaskEnd, now: number) => Promise<void>;

/**
 * What else a task's end changes (a deleted restore point's record, an instance's schedule),
 * written in the same transaction as the end itself, whichever way the task ended: an agent's
 * result or refusal, a cancel before dispatch, an undeliverable assignment, an expired lease.
 * The repositories that end tasks are handed this; the reactions are set once, in order, by
 * lifecycle/task-end.ts (a store test sets the ones it exercises).
 */
export class TaskEndings {
  private reactions: readonly TaskEndHook[] = [];

  /** Sets the reactions to every task's end, in the order they run. Once. */
  react(reactions: readonly TaskEndHook[]): void {
    if (this.reactions.length > 0) throw new Error('the task-end reactions are set already');
    this.reactions = reactions;
  }

  /** Runs the reactions to `task`'s end as `end`, and counts it among the ended tasks, in `trx`. */
  async ended(trx: Transaction<Database>, task: TaskRow, end: TaskEnd, now: number): Promise<void> {
    countEnded(trx, task.kind, end.state);
    for (const reaction of this.reactions) await reaction(trx, task, end, now);
  }
}
