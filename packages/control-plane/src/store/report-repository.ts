import type { Transaction } from 'kysely';
import type { ProgressReport, TaskChanges } from '../domain/report-outcome.js';
import type { TaskState } from '../domain/task.js';
import type { Database, TaskRow } from './schema.js';

type Trx = Transaction<Database>;

/** Who a report's writes are fenced by: the task, held by this agent under this attempt. */
export interface ReportFence {
  taskId: string;
  agentId: string;
  attempt: number;
}

/**
 * The rows agents' reports write (lifecycle/reports.ts decides what, by domain/report-outcome.ts):
 * the task as the report's transaction reads it, its fenced moves, and progress rows. Each takes
 * the report's transaction.
 */
export class ReportRepository {
  async task(trx: Trx, taskId: string): Promise<TaskRow | undefined> {
    return trx.selectFrom('tasks').selectAll().where('id', '=', taskId).executeTakeFirst();
  }

  /**
   * Moves the task if it is still held by the fence's agent under its attempt and in one of
   * `from`: the conditional update is the arbiter (a cancel, a lease sweep or a newer attempt
   * committed meanwhile wins). Returns whether it moved.
   */
  async move(trx: Trx, fence: ReportFence, from: readonly TaskState[], changes: TaskChanges): Promise<boolean> {
    const r = await trx
      .updateTable('tasks')
      .set(changes)
      .where('id', '=', fence.taskId)
      .where('attempt', '=', fence.attempt)
      .where('agentId', '=', fence.agentId)
      .where('state', 'in', [...from])
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Stores a progress report; false when it was stored already (unique per agent and spool seq). */
  async storeProgress(trx: Trx, agentId: string, report: ProgressReport): Promise<boolean> {
    const inserted = await trx
      .insertInto('taskProgress')
      .values({
        taskId: report.taskId,
        attempt: report.attempt,
        agentId,
        spoolSeq: report.seq,
        percent: report.percent,
        bytesDone: report.bytesDone,
        bytesTotal: report.bytesTotal,
        message: report.message || null,
        at: report.at,
      })
      .orIgnore()
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
  }
}
