import type { Transaction } from 'kysely';
import type { TaskState } from '../domain/task.js';
import type { Database, TaskRow } from './schema.js';

/** How a task ended: its final state, the failure (if any) and the output (a success's). */
export interface TaskEnd {
  state: TaskState;
  error: { code: string; message: string } | null;
  output: string | null;
  /**
   * A sync that found no repository through a connection that never reached one
   * (`noRepositoryYet`): it succeeded with an empty listing, and this is what the plugin said.
   */
  noRepository?: string;
}

/** Told of a task's end inside the transaction that ended it. */
export type TaskEndHook = (trx: Transaction<Database>, task: TaskRow, end: TaskEnd, now: number) => Promise<void>;

/**
 * What else a task's end changes (a deleted restore point's record, an instance's schedule),
 * written in the same transaction as the end itself, whichever way the task ended: an agent's
 * result or refusal, a cancel before dispatch, an undeliverable assignment, an expired lease.
 * Repositories register here once they are built, so the ones that end tasks need not know them.
 */
export class TaskEndings {
  private readonly hooks: TaskEndHook[] = [];

  on(hook: TaskEndHook): void {
    this.hooks.push(hook);
  }

  async ended(trx: Transaction<Database>, task: TaskRow, end: TaskEnd, now: number): Promise<void> {
    for (const hook of this.hooks) await hook(trx, task, end, now);
  }
}
