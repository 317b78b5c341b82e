import type { ExpressionBuilder, Selectable, Transaction } from 'kysely';
import { FailureCodes } from '@cairn/proto/vocabulary';
import { ConflictError } from '../domain/errors.js';
import type { NewTask, ScheduleFire } from '../domain/task-factory.js';
import { HELD_STATES, isTerminal, type TaskKind, type TaskState } from '../domain/task.js';
import { transact, type Db } from './db.js';
import { current, stateByIds, throughIndex } from './dialect.js';
import type { Clock } from '../clock.js';
import { appendEvents, appendTaskEvent, taskEvent } from './event-log.js';
import { newId } from './ids.js';
import {
  decodeCursor,
  decodeSeqCursor,
  pageOf,
  SCANNED_ROWS,
  scannedPage,
  type Page,
  type PageRequest,
} from './page.js';
import type { Database, TaskProgressRow, TaskRow } from './schema.js';
import { TaskEndings } from './task-endings.js';
import { taskCounts, type TaskCount } from './task-counts.js';
import { insertRows, template } from './compiled.js';

export interface TaskFilter {
  tenantId?: string;
  state?: TaskState;
  instanceId?: string;
  kind?: string;
}

/** What the event that queues (or refuses) a task says of the schedule fire that made it. */
function fireData(input: NewTask): ScheduleFire | undefined {
  return input.fire && { schedule: input.fire.schedule, fireAt: input.fire.fireAt, missed: input.fire.missed };
}

/** A task by id: the most frequent read of all (every task page, every report). */
const TASK_BY_ID = template((db, p: { id: string }) => db.selectFrom('tasks').selectAll().where('id', '=', p.id));

/** Tasks as the API sees them: create, read, list, their progress, cancel. */
export class TaskRepository {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    /** Told when a cancel ends a queued task. */
    private readonly endings = new TaskEndings(),
  ) {}

  /** Queues a task; inside `trx` when given (a change another repository is making). */
  async create(input: NewTask, now = this.clock.now(), trx?: Transaction<Database>): Promise<TaskRow> {
    return (await this.createMany([input], now, trx))[0]!;
  }

  /** Queues tasks made together (a batch of schedule fires): one insert of the tasks, one of their events. */
  async createMany(inputs: NewTask[], now = this.clock.now(), trx?: Transaction<Database>): Promise<TaskRow[]> {
    const rows = inputs.map((input) => this.row(input, now));
    if (rows.length === 0) return rows;
    const insert = async (t: Transaction<Database>) => {
      await insertRows(t, 'tasks', rows);
      appendEvents(
        t,
        rows.map((row, i) => taskEvent(row, 'task.queued', `${row.kind} task queued`, now, fireData(inputs[i]!))),
      );
    };
    await (trx ? insert(trx) : transact(this.db, insert));
    return rows;
  }

  private row(input: NewTask, now: number): TaskRow {
    return {
      id: input.id ?? newId('tsk', now),
      kind: input.kind,
      state: 'queued',
      attempt: 0,
      tenantId: input.tenantId,
      instanceId: input.instanceId,
      backupId: input.backupId,
      offeringId: input.offeringId,
      providerId: input.providerId,
      plugin: input.plugin,
      zone: input.zone,
      pinnedAgentId: input.pinnedAgentId,
      agentId: null,
      priority: input.priority,
      params: JSON.stringify(input.params),
      percent: 0,
      bytesDone: 0,
      bytesTotal: 0,
      progressMessage: null,
      etaSeconds: null,
      errorCode: null,
      errorMessage: null,
      output: null,
      cancelRequested: 0,
      deliveries: 0,
      leaseExpiresAt: null,
      createdAt: now,
      dispatchedAt: null,
      startedAt: null,
      endedAt: null,
    };
  }

  /**
   * Records work refused before it could start (maintenance): the task exists, already failed
   * with `error`, so the tenant sees why in the task, its event and the API answer.
   */
  async createRefused(
    input: NewTask,
    error: { code: string; message: string },
    now = this.clock.now(),
    trx?: Transaction<Database>,
  ): Promise<TaskRow> {
    const row: TaskRow = {
      ...this.row(input, now),
      state: 'failed',
      errorCode: error.code,
      errorMessage: error.message,
      endedAt: now,
    };
    const insert = async (t: Transaction<Database>) => {
      await t.insertInto('tasks').values(row).execute();
      appendTaskEvent(
        t,
        row,
        'task.failed',
        `${row.kind} task refused: ${error.code}: ${error.message}`,
        now,
        fireData(input),
      );
      await this.endings.ended(t, row, { state: 'failed', error, output: null }, now);
    };
    await (trx ? insert(trx) : transact(this.db, insert));
    return row;
  }

  /**
   * Fails a task still queued (maintenance stopped it before it was placed). Conditional on it
   * still being queued under the attempt read: false when it moved on meanwhile.
   */
  async failQueued(
    trx: Transaction<Database>,
    task: TaskRow,
    error: { code: string; message: string },
    now = this.clock.now(),
  ): Promise<boolean> {
    const r = await trx
      .updateTable('tasks')
      .set({ state: 'failed', endedAt: now, errorCode: error.code, errorMessage: error.message })
      .where('id', '=', task.id)
      .where('state', '=', 'queued')
      .where('attempt', '=', task.attempt)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    appendTaskEvent(trx, task, 'task.failed', `${task.kind} task failed: ${error.code}: ${error.message}`, now);
    await this.endings.ended(trx, task, { state: 'failed', error, output: null }, now);
    return true;
  }

  /** Of each of `instanceIds` (a bounded batch), its backup task still queued or held by an agent. */
  async activeBackupsOf(instanceIds: readonly string[]): Promise<Map<string, string>> {
    if (instanceIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('tasks')
      .select(['id', 'instanceId'])
      .where('instanceId', 'in', [...new Set(instanceIds)])
      .where('kind', '=', 'backup')
      .where('state', 'in', ['queued', ...HELD_STATES])
      .execute();
    return new Map(rows.map((r) => [r.instanceId!, r.id]));
  }

  /** The connection's oldest task of `kind` still queued or held by an agent (a prune), if any. */
  async pendingOfProvider(providerId: string, kind: TaskKind): Promise<TaskRow | undefined> {
    return this.db
      .selectFrom('tasks')
      .selectAll()
      .where('providerId', '=', providerId)
      .where('kind', '=', kind)
      .where('state', 'in', ['queued', ...HELD_STATES])
      .orderBy('createdAt')
      .executeTakeFirst();
  }

  /** A task by id (through `db`: a transaction reads it there). */
  async get(id: string, db: Db | Transaction<Database> = this.db): Promise<TaskRow | undefined> {
    return TASK_BY_ID.first(db, { id });
  }

  /** Newest first. */
  async list(page: PageRequest, filter: TaskFilter): Promise<Page<TaskRow>> {
    const before = decodeCursor(page.cursor);
    // Newest first, through the index by tenant or instance and id (or the primary key).
    const walk = (eb: ExpressionBuilder<Database, 'tasks'>) =>
      eb.and([
        ...(before ? [eb('id', '<', before)] : []),
        ...(filter.tenantId !== undefined ? [eb('tenantId', '=', filter.tenantId)] : []),
        ...(filter.instanceId !== undefined ? [eb('instanceId', '=', filter.instanceId)] : []),
      ]);
    // The index the walk goes through, named for MySQL/MariaDB (see throughIndex).
    const index =
      filter.instanceId !== undefined
        ? 'tasks_instance_newest'
        : filter.tenantId !== undefined
          ? 'tasks_tenant_newest'
          : undefined;
    const from = () => {
      const q = this.db.selectFrom('tasks');
      return index ? throughIndex(this.db, q, 'tasks', index) : q;
    };
    const read = (farEnd?: string) => {
      let q = from()
        .selectAll()
        .where(walk)
        .orderBy('id', 'desc')
        .limit(page.limit + 1);
      if (farEnd !== undefined) q = q.where('id', '>=', farEnd);
      // Kept off the (state, …) index on SQLite: with no tenant or instance named, its planner
      // took it and sorted every task in that state (a million succeeded ones) for one page.
      if (filter.state !== undefined) q = q.where(stateByIds(this.db), '=', filter.state);
      if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
      return q.execute();
    };
    if (filter.state === undefined && filter.kind === undefined) return pageOf(await read(), page.limit);
    // By state or kind: no index holds them in this order, so a page reads a bounded stretch.
    const stretch = async () =>
      (
        await from()
          .select('id')
          .where(walk)
          .orderBy('id', 'desc')
          .offset(SCANNED_ROWS - 1)
          .limit(2)
          .execute()
      ).map((r) => r.id);
    return scannedPage(page.limit, stretch, read);
  }

  /** In the order the reports were stored. */
  async progress(taskId: string, page: PageRequest): Promise<Page<Selectable<TaskProgressRow>>> {
    const after = decodeSeqCursor(page.cursor);
    let q = throughIndex(this.db, this.db.selectFrom('taskProgress'), 'task_progress', 'task_progress_task')
      .selectAll()
      .where('taskId', '=', taskId)
      .orderBy('id')
      .limit(page.limit + 1);
    if (after !== undefined) q = q.where('id', '>', after);
    return pageOf(await q.execute(), page.limit);
  }

  /**
   * A queued task is cancelled at once; one an agent holds gets `cancel_requested`, which the
   * dispatcher holding that agent's session turns into a Cancel frame.
   */
  async requestCancel(id: string, now = this.clock.now()): Promise<TaskRow> {
    for (;;) {
      // Read as committed now: inside a request's transaction a snapshot read would keep saying
      // `queued` after the dispatcher took the task, and this loop would never end.
      const task = await current(
        this.db,
        this.db.selectFrom('tasks').selectAll().where('id', '=', id),
      ).executeTakeFirst();
      if (!task) throw new Error(`task ${id} vanished`);
      if (isTerminal(task.state as TaskState))
        throw new ConflictError(`task ${id} already ended (${task.state})`, 'task_ended');
      if (task.state === 'queued') {
        const done = await transact(this.db, async (trx) => {
          const r = await trx
            .updateTable('tasks')
            .set({
              state: 'cancelled',
              endedAt: now,
              cancelRequested: 1,
              errorCode: FailureCodes.CANCELLED,
              errorMessage: 'cancelled before it started',
            })
            .where('id', '=', id)
            .where('state', '=', 'queued')
            .where('attempt', '=', task.attempt)
            .executeTakeFirst();
          if (Number(r.numUpdatedRows) !== 1) return false;
          appendTaskEvent(trx, task, 'task.cancelled', `${task.kind} task cancelled before it started`, now);
          const error = { code: FailureCodes.CANCELLED, message: 'cancelled before it started' };
          await this.endings.ended(trx, task, { state: 'cancelled', error, output: null }, now);
          return true;
        });
        if (done) return (await this.get(id))!;
        continue; // it moved on meanwhile: look again
      }
      await this.db
        .updateTable('tasks')
        .set({ cancelRequested: 1 })
        .where('id', '=', id)
        .where('state', 'in', HELD_STATES)
        .execute();
      return (await this.get(id))!;
    }
  }

  /** Tasks in the store per state and kind (see store/task-counts.ts: nothing here counts ended tasks). */
  countsByStateAndKind(): Promise<TaskCount[]> {
    return taskCounts(this.db);
  }
}
