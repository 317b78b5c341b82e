import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { ProgressReport, TaskChanges } from '../domain/report-outcome.js';
import type { TaskState } from '../domain/task.js';
import type { Database, TaskRow } from './schema.js';
import { insertRows, ShapedTemplate } from './compiled.js';

type Trx = Transaction<Database>;

/** Ids per `in (…)` list: well under SQLite's and MySQL's limits on bound parameters. */
const IN_LIST = 500;

/** A fenced move's SQL: which columns it sets, how many states it may leave. */
const MOVE = new ShapedTemplate<{ columns: (keyof TaskChanges)[]; states: number }, Record<string, unknown>, never>(
  (s) => `${s.states}|${s.columns.join(',')}`,
  (db, p, s) =>
    db
      .updateTable('tasks')
      .set(Object.fromEntries(s.columns.map((column) => [column, p[`set:${column}`]])) as TaskChanges)
      .where('id', '=', p.id as string)
      .where('attempt', '=', p.attempt as number)
      .where('agentId', '=', p.agentId as string)
      .where(
        'state',
        'in',
        Array.from({ length: s.states }, (_, i) => p[`from:${i}`] as TaskState),
      ),
);

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

  /** The tasks named, read in one query (a tick of reports), by id; an id with no task is absent. */
  async tasks(trx: Trx, taskIds: string[]): Promise<Map<string, TaskRow>> {
    const found = new Map<string, TaskRow>();
    for (let i = 0; i < taskIds.length; i += IN_LIST) {
      const rows = await trx
        .selectFrom('tasks')
        .selectAll()
        .where('id', 'in', taskIds.slice(i, i + IN_LIST))
        .execute();
      for (const row of rows) found.set(row.id, row);
    }
    return found;
  }

  /**
   * The newest progress stored from `agentId` per task and attempt, among its reports from spool
   * seq `fromSeq` on (the range its unique index reads): a progress report at or below it is a
   * repeat or superseded, and moves nothing. Keyed `taskId:attempt`.
   */
  async newestProgress(trx: Trx, agentId: string, taskIds: string[], fromSeq: number): Promise<Map<string, number>> {
    const newest = new Map<string, number>();
    for (let i = 0; i < taskIds.length; i += IN_LIST) {
      const rows = await trx
        .selectFrom('taskProgress')
        .select(['taskId', 'attempt', (eb) => eb.fn.max<number>('spoolSeq').as('seq')])
        .where('agentId', '=', agentId)
        .where('spoolSeq', '>=', fromSeq)
        .where('taskId', 'in', taskIds.slice(i, i + IN_LIST))
        .groupBy(['taskId', 'attempt'])
        .execute();
      for (const r of rows) newest.set(`${r.taskId}:${r.attempt}`, Number(r.seq));
    }
    return newest;
  }

  /**
   * Moves the task if it is still held by the fence's agent under its attempt and in one of
   * `from`: the conditional update is the arbiter (a cancel, a lease sweep or a newer attempt
   * committed meanwhile wins). Returns whether it moved.
   */
  async move(trx: Trx, fence: ReportFence, from: readonly TaskState[], changes: TaskChanges): Promise<boolean> {
    const columns = (Object.keys(changes) as (keyof TaskChanges)[]).filter((c) => changes[c] !== undefined).sort();
    const params: Record<string, unknown> = { id: fence.taskId, attempt: fence.attempt, agentId: fence.agentId };
    for (const column of columns) params[`set:${column}`] = changes[column];
    from.forEach((state, i) => (params[`from:${i}`] = state));
    const r = await MOVE.run(trx, { columns, states: from.length }, params);
    return Number(r.numAffectedRows) === 1;
  }

  /**
   * Moves many tasks alike (the same states left, the same fields changed, each to its own
   * values) in one statement per `IN_LIST`, each fenced as `move` fences one: a tick's progress.
   * Answers how many moved.
   */
  async moveMany(
    trx: Trx,
    from: readonly TaskState[],
    moves: { fence: ReportFence; changes: TaskChanges }[],
  ): Promise<number> {
    let moved = 0;
    for (let i = 0; i < moves.length; i += IN_LIST) {
      const part = moves.slice(i, i + IN_LIST);
      if (part.length === 1) {
        moved += (await this.move(trx, part[0]!.fence, from, part[0]!.changes)) ? 1 : 0;
        continue;
      }
      const columns = [...new Set(part.flatMap((m) => Object.keys(m.changes)))] as (keyof TaskChanges)[];
      // Each column: its value for each task by id, unchanged for a task whose move leaves it.
      const set = Object.fromEntries(
        columns.map((column) => [
          column,
          sql`case ${sql.ref('id')} ${sql.join(
            part.map((m) =>
              column in m.changes
                ? sql`when ${m.fence.taskId} then ${m.changes[column]}`
                : sql`when ${m.fence.taskId} then ${sql.ref(column)}`,
            ),
            sql` `,
          )} else ${sql.ref(column)} end`,
        ]),
      );
      const r = await trx
        .updateTable('tasks')
        .set(set as Partial<Record<keyof TaskChanges, RawBuilder<never>>>)
        .where('state', 'in', [...from])
        .where((eb) =>
          eb.or(
            part.map((m) =>
              eb.and([
                eb('id', '=', m.fence.taskId),
                eb('attempt', '=', m.fence.attempt),
                eb('agentId', '=', m.fence.agentId),
              ]),
            ),
          ),
        )
        .executeTakeFirst();
      moved += Number(r.numUpdatedRows);
    }
    return moved;
  }

  /** Stores progress reports of `agentId` in one insert; one stored already is skipped (unique per agent and spool seq). */
  async storeProgressMany(trx: Trx, agentId: string, reports: ProgressReport[]): Promise<void> {
    if (reports.length === 0) return;
    await insertRows(
      trx,
      'taskProgress',
      reports.map((report) => progressRow(agentId, report)),
      { orIgnore: true },
    );
  }
}

function progressRow(agentId: string, report: ProgressReport) {
  return {
    taskId: report.taskId,
    attempt: report.attempt,
    agentId,
    spoolSeq: report.seq,
    percent: report.percent,
    bytesDone: report.bytesDone,
    bytesTotal: report.bytesTotal,
    message: report.message || null,
    at: report.at,
  };
}
