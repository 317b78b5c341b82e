import { sql } from 'kysely';
import type { HistoryMark, TaskAge } from '../domain/history.js';
import { TERMINAL_STATES } from '../domain/task.js';
import { transact, type Db } from './db.js';
import { current } from './dialect.js';
import { moveTaskCounts } from './task-counts.js';

/** How far each log has been forgotten (`history_state`). */
export interface HistoryState {
  /** Every event with an id up to this is forgotten. */
  eventsThrough: number;
  /** Every progress report up to this id is forgotten, but those of tasks not yet ended then. */
  progressThrough: number;
}

/** A log the sweep forgets by ranges of ids. */
export type HistoryLog = 'events' | 'progress';

/**
 * The history sweep's reads and deletes (scheduler/history.ts): its marks, and the forgetting of
 * ended tasks, progress reports and events. Each delete is one bounded statement (a range of ids,
 * or a page of tasks) in a transaction of its own, so it holds the store for a short time only.
 */
export class HistoryRepository {
  constructor(private readonly db: Db) {}

  /**
   * Writes the mark of the interval starting at `intervalAt`: the newest event and progress ids,
   * read at `at`. Once: false when that interval's mark was written already (by another replica,
   * or before a restart), so each interval's pass is claimed by the replica whose mark went in.
   */
  async mark(intervalAt: number, at: number): Promise<boolean> {
    const last = await this.db
      .selectNoFrom((eb) => [
        eb
          .selectFrom('events')
          .select((e) => e.fn.max('id').as('n'))
          .as('lastEventId'),
        eb
          .selectFrom('taskProgress')
          .select((e) => e.fn.max('id').as('n'))
          .as('lastProgressId'),
      ])
      .executeTakeFirstOrThrow();
    const r = await this.db
      .insertInto('historyMarks')
      .values({
        intervalAt,
        at,
        lastEventId: Number(last.lastEventId ?? 0),
        lastProgressId: Number(last.lastProgressId ?? 0),
      })
      .orIgnore()
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /**
   * The newest mark read at or before each of `times` (none for a time older than every mark):
   * each a seek from the end of the marks written up to that time, whatever the number kept.
   */
  async marksAtOrBefore(times: readonly number[]): Promise<HistoryMark[]> {
    const found: HistoryMark[] = [];
    for (const time of times) {
      // A mark's ids are read within its interval (at >= interval_at): of the two newest begun by
      // `time`, the newer may have been read after it.
      const rows = await this.db
        .selectFrom('historyMarks')
        .select(['at', 'lastEventId', 'lastProgressId'])
        .where('intervalAt', '<=', time)
        .orderBy('intervalAt', 'desc')
        .limit(2)
        .execute();
      const row = rows.find((r) => Number(r.at) <= time);
      if (row)
        found.push({
          at: Number(row.at),
          lastEventId: Number(row.lastEventId),
          lastProgressId: Number(row.lastProgressId),
        });
    }
    return found;
  }

  /**
   * Removes marks read before `before` (no cut reads them any more): those of intervals that
   * ended by then (`intervalMs` long), through the key.
   */
  async forgetMarks(before: number, intervalMs: number): Promise<void> {
    if (!Number.isFinite(before)) return;
    await this.db
      .deleteFrom('historyMarks')
      .where('intervalAt', '<', before - intervalMs)
      .execute();
  }

  async state(): Promise<HistoryState> {
    const row = await this.db
      .selectFrom('historyState')
      .select(['eventsThrough', 'progressThrough'])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return { eventsThrough: Number(row.eventsThrough), progressThrough: Number(row.progressThrough) };
  }

  /** The lowest id of `log` above `after` and at most `through` (undefined: none): where a walk resumes past a gap. */
  async nextId(log: HistoryLog, after: number, through: number): Promise<number | undefined> {
    const table = log === 'events' ? 'events' : 'taskProgress';
    const row = await this.db
      .selectFrom(table)
      .select((eb) => eb.fn.min('id').as('n'))
      .where('id', '>', after)
      .where('id', '<=', through)
      .executeTakeFirst();
    return row?.n === null || row?.n === undefined ? undefined : Number(row.n);
  }

  /**
   * Forgets the events with ids in (`after`, `through`], and records that every event up to
   * `through` is forgotten. Answers how many went.
   */
  async forgetEvents(after: number, through: number): Promise<number> {
    return transact(this.db, async (trx) => {
      const r = await trx.deleteFrom('events').where('id', '>', after).where('id', '<=', through).executeTakeFirst();
      await advance(trx, 'eventsThrough', through);
      return Number(r.numDeletedRows);
    });
  }

  /**
   * Forgets the progress reports with ids in (`after`, `through`] of tasks that ended (a task
   * still queued or held keeps its reports: they go with it), and records the walk's place.
   * Answers how many went.
   */
  async forgetProgress(after: number, through: number): Promise<number> {
    return transact(this.db, async (trx) => {
      const r = await trx
        .deleteFrom('taskProgress')
        .where('id', '>', after)
        .where('id', '<=', through)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('tasks')
                .select(sql.lit(1).as('one'))
                .whereRef('tasks.id', '=', 'taskProgress.taskId')
                .where('tasks.state', 'not in', TERMINAL_STATES),
            ),
          ),
        )
        .executeTakeFirst();
      await advance(trx, 'progressThrough', through);
      return Number(r.numDeletedRows);
    });
  }

  /** Up to `limit` tasks with ids above `after` and below `below`, in id order (creation order). */
  async tasksBetween(after: string, below: string, limit: number): Promise<(TaskAge & { id: string })[]> {
    const rows = await this.db
      .selectFrom('tasks')
      .select(['id', 'state', 'createdAt', 'endedAt'])
      .where('id', '>', after)
      .where('id', '<', below)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      state: r.state,
      createdAt: Number(r.createdAt),
      endedAt: r.endedAt === null ? null : Number(r.endedAt),
    }));
  }

  /**
   * Forgets these tasks, which ended before `endedBefore`, with their progress reports: the
   * delete names the rule again (ended, and before then), so a task that is not forgettable is
   * never removed whatever the list holds. Answers how many tasks went.
   */
  async forgetTasks(ids: readonly string[], endedBefore: number): Promise<number> {
    if (ids.length === 0) return 0;
    return transact(this.db, async (trx) => {
      // The tasks that go, read as committed and locked (MySQL/MariaDB), so the kept counts of
      // ended tasks move by exactly what the delete removes.
      const going = await current(
        trx,
        trx
          .selectFrom('tasks')
          .select(['id', 'state', 'kind'])
          .where('id', 'in', [...ids])
          .where('state', 'in', TERMINAL_STATES)
          .where((eb) => eb(eb.fn.coalesce('endedAt', 'createdAt'), '<', endedBefore)),
      ).execute();
      const r =
        going.length === 0
          ? { numDeletedRows: 0n }
          : await trx
              .deleteFrom('tasks')
              .where(
                'id',
                'in',
                going.map((t) => t.id),
              )
              .where('state', 'in', TERMINAL_STATES)
              .where((eb) => eb(eb.fn.coalesce('endedAt', 'createdAt'), '<', endedBefore))
              .executeTakeFirst();
      await moveTaskCounts(trx, going, -1);
      // Reports of a task no longer there (this one, or one forgotten before).
      await trx
        .deleteFrom('taskProgress')
        .where('taskId', 'in', [...ids])
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(selectFrom('tasks').select(sql.lit(1).as('one')).whereRef('tasks.id', '=', 'taskProgress.taskId')),
          ),
        )
        .execute();
      return Number(r.numDeletedRows);
    });
  }
}

/** Records that a log is forgotten through `through` (never moving its place back). */
async function advance(trx: Db, column: 'eventsThrough' | 'progressThrough', through: number): Promise<void> {
  await trx
    .updateTable('historyState')
    .set({ [column]: through })
    .where('id', '=', 1)
    .where(column, '<', through)
    .execute();
}
