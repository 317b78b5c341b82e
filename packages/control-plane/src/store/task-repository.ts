import type { Insertable, Selectable, Transaction } from 'kysely';
import { backupName } from '../domain/backup-name.js';
import { ConflictError } from '../domain/errors.js';
import { rejectionOutcome } from '../domain/dispatch-rules.js';
import {
  HELD_STATES,
  etaSeconds,
  isTerminal,
  outcomeState,
  statesLeadingTo,
  type TaskKind,
  type TaskState,
} from '../domain/task.js';
import { transact, type Db } from './db.js';
import { newId } from './ids.js';
import { decodeCursor, decodeSeqCursor, pageOf, type Page, type PageRequest } from './page.js';
import type { BackupRow, Database, EventRow, TaskProgressRow, TaskRow } from './schema.js';

export interface NewTask {
  kind: TaskKind;
  tenantId: string;
  instanceId: string | null;
  backupId: string | null;
  offeringId: string | null;
  providerId: string;
  plugin: string;
  zone: string;
  pinnedAgentId: string | null;
  priority: number;
  params: Record<string, unknown>;
}

/** Reports an agent sends about its tasks (each with the spool seq it is acknowledged by). */
export type Report =
  | { kind: 'accepted'; seq: number; taskId: string; attempt: number; at: number }
  | { kind: 'rejected'; seq: number; taskId: string; attempt: number; reasonCode: string; message: string; at: number }
  | {
      kind: 'progress';
      seq: number;
      taskId: string;
      attempt: number;
      percent: number;
      bytesDone: number;
      bytesTotal: number;
      message: string;
      at: number;
    }
  | {
      kind: 'event';
      seq: number;
      taskId: string;
      attempt: number;
      type: string;
      message: string;
      data: string | null;
      at: number;
    }
  | {
      kind: 'result';
      seq: number;
      taskId: string;
      attempt: number;
      at: number;
      outcome:
        | {
            ok: true;
            backup: {
              externalId: string;
              sizeBytes: number;
              addedBytes: number;
              mode: string;
              parentExternalId: string;
            } | null;
            output: string | null;
          }
        | { ok: false; code: string; message: string; retryable: boolean };
    };

/** What applying a batch of reports changed, for logs and wake-ups. */
export interface ApplyOutcome {
  ended: { taskId: string; state: TaskState }[];
  requeued: string[];
}

export interface TaskFilter {
  tenantId?: string;
  state?: TaskState;
  instanceId?: string;
  kind?: string;
}

type Trx = Transaction<Database>;

/** Tasks, their progress, the events they raise and the backups they produce. */
export class TaskRepository {
  constructor(private readonly db: Db) {}

  async create(input: NewTask, now = Date.now()): Promise<TaskRow> {
    const row: TaskRow = {
      id: newId('tsk', now),
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
    await transact(this.db, async (trx) => {
      await trx.insertInto('tasks').values(row).execute();
      await this.event(trx, row, 'task.queued', `${row.kind} task queued`, now);
    });
    return row;
  }

  async get(id: string): Promise<TaskRow | undefined> {
    return this.db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Newest first. */
  async list(page: PageRequest, filter: TaskFilter): Promise<Page<TaskRow>> {
    const before = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('tasks')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(page.limit + 1);
    if (before) q = q.where('id', '<', before);
    if (filter.tenantId !== undefined) q = q.where('tenantId', '=', filter.tenantId);
    if (filter.state !== undefined) q = q.where('state', '=', filter.state);
    if (filter.instanceId !== undefined) q = q.where('instanceId', '=', filter.instanceId);
    if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
    return pageOf(await q.execute(), page.limit);
  }

  /** In the order the reports were stored. */
  async progress(taskId: string, page: PageRequest): Promise<Page<Selectable<TaskProgressRow>>> {
    const after = decodeSeqCursor(page.cursor);
    let q = this.db
      .selectFrom('taskProgress')
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
  async requestCancel(id: string, now = Date.now()): Promise<TaskRow> {
    for (;;) {
      const task = await this.get(id);
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
              errorCode: 'CANCELLED',
              errorMessage: 'cancelled before it started',
            })
            .where('id', '=', id)
            .where('state', '=', 'queued')
            .where('attempt', '=', task.attempt)
            .executeTakeFirst();
          if (Number(r.numUpdatedRows) !== 1) return false;
          await this.event(trx, task, 'task.cancelled', `${task.kind} task cancelled before it started`, now);
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

  /** Tasks per state and kind (for metrics). */
  async countsByStateAndKind(): Promise<{ state: string; kind: string; n: number }[]> {
    const rows = await this.db
      .selectFrom('tasks')
      .select(['state', 'kind', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['state', 'kind'])
      .execute();
    return rows.map((r) => ({ state: r.state, kind: r.kind, n: Number(r.n) }));
  }

  // --- dispatch ---

  /** Tasks held (dispatched or running) per agent, and in all. */
  async heldCounts(): Promise<{ total: number; byAgent: Map<string, number> }> {
    const rows = await this.db
      .selectFrom('tasks')
      .select(['agentId', (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', 'in', HELD_STATES)
      .groupBy('agentId')
      .execute();
    const byAgent = new Map<string, number>();
    let total = 0;
    for (const r of rows) {
      total += Number(r.n);
      if (r.agentId) byAgent.set(r.agentId, Number(r.n));
    }
    return { total, byAgent };
  }

  /**
   * The head of the queue: priority first, then enqueue order, skipping tasks whose instance
   * already has a task held by an agent (an instance never runs two operations at once). Each
   * tenant contributes at most `perTenant` tasks per priority, so one tenant's flood of queued
   * work cannot push the others out of the window the dispatcher looks at.
   */
  async queueHead(limit: number, perTenant: number = limit): Promise<TaskRow[]> {
    const ranked = this.db
      .selectFrom('tasks')
      .selectAll('tasks')
      .select((eb) =>
        eb.fn
          .agg<number>('row_number')
          .over((ob) => ob.partitionBy(['tasks.tenantId', 'tasks.priority']).orderBy('tasks.id'))
          .as('tenantRank'),
      )
      .where('tasks.state', '=', 'queued')
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('tasks as busy')
              .select('busy.id')
              .whereRef('busy.instanceId', '=', 'tasks.instanceId')
              .where('busy.state', 'in', HELD_STATES),
          ),
        ),
      );
    const rows = await this.db
      .selectFrom(ranked.as('q'))
      .selectAll('q')
      .where('q.tenantRank', '<=', perTenant)
      .orderBy('q.priority', 'desc')
      .orderBy('q.id')
      .limit(limit)
      .execute();
    return rows.map(({ tenantRank: _rank, ...task }) => task);
  }

  /**
   * Hands a queued task to an agent under a new attempt number. Conditional on the state and
   * attempt read before, so two replicas can never both dispatch it. Returns the new attempt.
   */
  async claim(task: TaskRow, agentId: string, leaseExpiresAt: number, now = Date.now()): Promise<number | null> {
    const attempt = task.attempt + 1;
    const r = await this.db
      .updateTable('tasks')
      .set({
        state: 'dispatched',
        agentId,
        attempt,
        dispatchedAt: now,
        leaseExpiresAt,
        cancelRequested: 0,
        deliveries: 0,
      })
      .where('id', '=', task.id)
      .where('state', 'in', statesLeadingTo('dispatched'))
      .where('attempt', '=', task.attempt)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1 ? attempt : null;
  }

  /** Tasks an agent holds according to the store (for reconcile after a reconnect). */
  async heldBy(agentId: string): Promise<TaskRow[]> {
    return this.db
      .selectFrom('tasks')
      .selectAll()
      .where('agentId', '=', agentId)
      .where('state', 'in', HELD_STATES)
      .execute();
  }

  /** Tasks still `dispatched` (not yet accepted) to the given agents since before `before`. */
  async dispatchedBefore(agentIds: string[], before: number): Promise<TaskRow[]> {
    if (agentIds.length === 0) return [];
    return this.db
      .selectFrom('tasks')
      .selectAll()
      .where('agentId', 'in', agentIds)
      .where('state', '=', 'dispatched')
      .where('dispatchedAt', '<', before)
      .execute();
  }

  /**
   * Counts one more send of a not yet accepted assignment (and restarts the wait for its
   * acceptance). False when the attempt moved on meanwhile: then it must not be sent.
   */
  async recordDelivery(task: TaskRow, now = Date.now()): Promise<boolean> {
    const r = await this.db
      .updateTable('tasks')
      .set((eb) => ({ deliveries: eb('deliveries', '+', 1), dispatchedAt: now }))
      .where('id', '=', task.id)
      .where('attempt', '=', task.attempt)
      .where('agentId', '=', task.agentId ?? '')
      .where('state', '=', 'dispatched')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * Fails an attempt the control plane cannot deliver to its agent (assignment too large, sent
   * too often without being accepted, provider gone). Fenced like an agent's report: only the
   * attempt held by that agent moves; false when it had moved on already.
   */
  async failAssignment(task: TaskRow, code: string, message: string, now = Date.now()): Promise<boolean> {
    return transact(this.db, async (trx) => {
      const r = await trx
        .updateTable('tasks')
        .set({ state: 'failed', endedAt: now, errorCode: code, errorMessage: message, leaseExpiresAt: null })
        .where('id', '=', task.id)
        .where('attempt', '=', task.attempt)
        .where('agentId', '=', task.agentId ?? '')
        .where(
          'state',
          'in',
          statesLeadingTo('failed').filter((s) => HELD_STATES.includes(s)),
        )
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await this.event(trx, task, 'task.failed', `${task.kind} task failed: ${code}: ${message}`, now);
      return true;
    });
  }

  /** Held tasks with a pending cancel request, for the given agents. */
  async cancelsFor(agentIds: string[]): Promise<TaskRow[]> {
    if (agentIds.length === 0) return [];
    return this.db
      .selectFrom('tasks')
      .selectAll()
      .where('agentId', 'in', agentIds)
      .where('state', 'in', HELD_STATES)
      .where('cancelRequested', '=', 1)
      .execute();
  }

  /** Held tasks whose lease ran out become `lost` (their agent stopped heartbeating). */
  async expireLeases(now = Date.now()): Promise<TaskRow[]> {
    const expired = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('state', 'in', HELD_STATES)
      .where('leaseExpiresAt', '<', now)
      .execute();
    const lost: TaskRow[] = [];
    for (const task of expired) {
      const marked = await transact(this.db, async (trx) => {
        const r = await trx
          .updateTable('tasks')
          .set({
            state: 'lost',
            endedAt: now,
            errorCode: 'AGENT_LOST',
            errorMessage: `agent ${task.agentId ?? '?'} stopped reporting; the task's lease expired`,
          })
          .where('id', '=', task.id)
          .where('attempt', '=', task.attempt)
          .where('state', 'in', statesLeadingTo('lost'))
          .where('leaseExpiresAt', '<', now)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) return false;
        await this.event(trx, task, 'task.lost', `${task.kind} task lost: its agent stopped reporting`, now);
        return true;
      });
      if (marked) lost.push(task);
    }
    return lost;
  }

  /**
   * Applies an agent's reports in one transaction. Every write is conditional on the task being
   * held by this agent under the reported attempt (the fencing token); a report of a superseded
   * attempt, of a task that already ended, or one already stored changes nothing.
   */
  async applyReports(agentId: string, reports: Report[], leaseMs: number, now = Date.now()): Promise<ApplyOutcome> {
    if (reports.length === 0) return { ended: [], requeued: [] };
    return transact(this.db, async (trx) => {
      // Built inside the transaction: a retried transaction starts from an empty outcome.
      const outcome: ApplyOutcome = { ended: [], requeued: [] };
      for (const report of reports) await this.applyOne(trx, agentId, report, leaseMs, now, outcome);
      return outcome;
    });
  }

  private async applyOne(
    trx: Trx,
    agentId: string,
    report: Report,
    leaseMs: number,
    now: number,
    outcome: ApplyOutcome,
  ) {
    const task = await trx.selectFrom('tasks').selectAll().where('id', '=', report.taskId).executeTakeFirst();
    if (!task || task.agentId !== agentId || task.attempt !== report.attempt) return;
    // Events are an append-only log: a plugin's last words after its result still count.
    if (report.kind === 'event') return this.recordAgentEvent(trx, agentId, task, report);
    if (!HELD_STATES.includes(task.state as TaskState)) return;
    // Every write is fenced by agent and attempt, and may only make a move the state machine allows.
    const fenced = (to?: TaskState) =>
      trx
        .updateTable('tasks')
        .where('id', '=', task.id)
        .where('attempt', '=', report.attempt)
        .where('agentId', '=', agentId)
        .where('state', 'in', to ? statesLeadingTo(to).filter((s) => HELD_STATES.includes(s)) : HELD_STATES);

    switch (report.kind) {
      case 'accepted': {
        if (task.state !== 'dispatched') return;
        await fenced('running')
          .set({ state: 'running', startedAt: report.at, leaseExpiresAt: now + leaseMs })
          .execute();
        await this.event(trx, task, 'task.started', `${task.kind} task started on agent ${agentId}`, now);
        return;
      }
      case 'rejected': {
        const rule = rejectionOutcome(report.reasonCode);
        if (report.reasonCode === 'DRAINING') {
          await trx
            .updateTable('agents')
            .set({ draining: 1, drainMessage: report.message })
            .where('id', '=', agentId)
            .execute();
        }
        if (rule.requeue) {
          await fenced('queued')
            .set({ state: 'queued', agentId: null, leaseExpiresAt: null, dispatchedAt: null })
            .execute();
          outcome.requeued.push(task.id);
          return;
        }
        await fenced('failed')
          .set({ state: 'failed', endedAt: now, errorCode: rule.code, errorMessage: report.message })
          .execute();
        await this.event(
          trx,
          task,
          'task.failed',
          `${task.kind} task refused by agent ${agentId}: ${report.message}`,
          now,
        );
        outcome.ended.push({ taskId: task.id, state: 'failed' });
        return;
      }
      case 'progress': {
        const inserted = await trx
          .insertInto('taskProgress')
          .values({
            taskId: task.id,
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
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return;
        const startedAt = task.startedAt ?? report.at;
        await fenced()
          .set({
            state: 'running',
            startedAt,
            percent: report.percent,
            bytesDone: report.bytesDone,
            bytesTotal: report.bytesTotal,
            progressMessage: report.message || null,
            etaSeconds: etaSeconds(startedAt, report.at, report.percent),
            leaseExpiresAt: now + leaseMs,
          })
          .execute();
        return;
      }
      case 'result': {
        const o = report.outcome;
        const state = outcomeState(o.ok ? { ok: true } : { ok: false, errorCode: o.code }, task.cancelRequested === 1);
        const r = await fenced(state)
          .set({
            state,
            endedAt: now,
            startedAt: task.startedAt ?? report.at,
            ...(o.ok
              ? { percent: 100, etaSeconds: 0, output: o.output }
              : { errorCode: o.code, errorMessage: o.message }),
          })
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) return;
        if (o.ok && task.kind === 'backup' && o.backup) await this.recordBackup(trx, task, o.backup, now);
        const message = o.ok ? `${task.kind} task succeeded` : `${task.kind} task ${state}: ${o.code}: ${o.message}`;
        await this.event(trx, task, `task.${state}`, message, now);
        outcome.ended.push({ taskId: task.id, state });
        return;
      }
    }
  }

  private async recordAgentEvent(trx: Trx, agentId: string, task: TaskRow, report: Extract<Report, { kind: 'event' }>) {
    await this.tickEventClock(trx);
    await trx
      .insertInto('events')
      .values({
        tenantId: task.tenantId,
        type: report.type,
        at: report.at,
        message: report.message,
        taskId: task.id,
        instanceId: task.instanceId,
        jobId: null,
        agentId,
        data: report.data,
        sourceAgentId: agentId,
        sourceSeq: report.seq,
      })
      .orIgnore()
      .execute();
  }

  /** One backup record per task: the unique task_id makes a second insert impossible. */
  private async recordBackup(
    trx: Trx,
    task: TaskRow,
    meta: { externalId: string; sizeBytes: number; addedBytes: number; mode: string; parentExternalId: string },
    now: number,
  ): Promise<void> {
    if (!task.instanceId || !task.offeringId) return;
    const instance = await trx
      .selectFrom('instances')
      .select(['name'])
      .where('id', '=', task.instanceId)
      .executeTakeFirst();
    const parent = meta.parentExternalId
      ? await trx
          .selectFrom('backups')
          .select('id')
          .where('instanceId', '=', task.instanceId)
          .where('externalId', '=', meta.parentExternalId)
          .executeTakeFirst()
      : undefined;
    const row: BackupRow = {
      id: newId('bkp', now),
      tenantId: task.tenantId,
      instanceId: task.instanceId,
      offeringId: task.offeringId,
      taskId: task.id,
      name: backupName(instance?.name ?? task.instanceId, now),
      mode: meta.mode === 'INCREMENT' ? 'INCREMENT' : 'FULL',
      createdAt: now,
      sizeBytes: meta.sizeBytes,
      addedBytes: meta.addedBytes,
      externalId: meta.externalId,
      parentId: parent?.id ?? null,
      expiresAt: null,
    };
    await trx.insertInto('backups').values(row).execute();
    await trx.updateTable('tasks').set({ backupId: row.id }).where('id', '=', task.id).execute();
  }

  private async event(trx: Trx, task: TaskRow, type: string, message: string, now: number): Promise<void> {
    const row: Insertable<EventRow> = {
      tenantId: task.tenantId,
      type,
      at: now,
      message,
      taskId: task.id,
      instanceId: task.instanceId,
      jobId: null,
      agentId: task.agentId,
      data: null,
      sourceAgentId: null,
      sourceSeq: null,
    };
    await this.tickEventClock(trx);
    await trx.insertInto('events').values(row).execute();
  }

  /** Taken before every event insert: event ids then follow commit order (see migration 0002). */
  private async tickEventClock(trx: Trx): Promise<void> {
    await trx
      .updateTable('eventClock')
      .set((eb) => ({ ticks: eb('ticks', '+', 1) }))
      .where('id', '=', 1)
      .execute();
  }

  // --- backups and events (read side) ---

  async getBackup(id: string): Promise<BackupRow | undefined> {
    return this.db.selectFrom('backups').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listBackups(page: PageRequest, filter: { tenantId?: string; instanceId?: string }): Promise<Page<BackupRow>> {
    const before = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('backups')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(page.limit + 1);
    if (before) q = q.where('id', '<', before);
    if (filter.tenantId !== undefined) q = q.where('tenantId', '=', filter.tenantId);
    if (filter.instanceId !== undefined) q = q.where('instanceId', '=', filter.instanceId);
    return pageOf(await q.execute(), page.limit);
  }

  /**
   * Billing figures per tenant: instances with an offering, restore points, bytes the provider
   * stores for them (added bytes of incrementals, full size otherwise), and bytes protected (the
   * newest backup's size of each instance).
   */
  async usage(
    page: PageRequest,
    tenantId?: string,
  ): Promise<
    Page<{ tenantId: string; protectedInstances: number; backups: number; storedBytes: number; protectedBytes: number }>
  > {
    const after = decodeCursor(page.cursor);
    const tenantPage = pageOf(
      await this.db
        .selectFrom('tenants')
        .select('id')
        .$if(tenantId !== undefined, (q) => q.where('id', '=', tenantId!))
        .$if(after !== undefined, (q) => q.where('id', '>', after!))
        .orderBy('id')
        .limit(page.limit + 1)
        .execute(),
      page.limit,
    );
    const tenants = tenantPage.items;
    if (tenants.length === 0) return { items: [], nextCursor: null };
    // The figures of this page's tenants only: the page bounds the work, not just the answer.
    const ids = tenants.map((t) => t.id);
    const protectedRows = await this.db
      .selectFrom('instances')
      .select(['tenantId', (eb) => eb.fn.countAll<number>().as('n')])
      .where('offeringId', 'is not', null)
      .where('tenantId', 'in', ids)
      .groupBy('tenantId')
      .execute();
    const backupRows = await this.db
      .selectFrom('backups')
      .select([
        'tenantId',
        (eb) => eb.fn.countAll<number>().as('n'),
        (eb) => eb.fn.sum<number>(eb.fn.coalesce('addedBytes', 'sizeBytes')).as('stored'),
      ])
      .where('tenantId', 'in', ids)
      .groupBy('tenantId')
      .execute();
    const newestRows = await this.db
      .selectFrom('backups as b')
      .select(['b.tenantId', (eb) => eb.fn.sum<number>('b.sizeBytes').as('bytes')])
      .where((eb) =>
        eb(
          'b.id',
          '=',
          eb
            .selectFrom('backups as newer')
            .select((e) => e.fn.max('newer.id').as('id'))
            .whereRef('newer.instanceId', '=', 'b.instanceId'),
        ),
      )
      .where('b.tenantId', 'in', ids)
      .groupBy('b.tenantId')
      .execute();
    const protectedBy = new Map(protectedRows.map((r) => [r.tenantId, Number(r.n)]));
    const backupsBy = new Map(backupRows.map((r) => [r.tenantId, r]));
    const newestBy = new Map(newestRows.map((r) => [r.tenantId, Number(r.bytes ?? 0)]));
    const items = tenants.map(({ id }) => ({
      tenantId: id,
      protectedInstances: protectedBy.get(id) ?? 0,
      backups: Number(backupsBy.get(id)?.n ?? 0),
      storedBytes: Number(backupsBy.get(id)?.stored ?? 0),
      protectedBytes: newestBy.get(id) ?? 0,
    }));
    return { items, nextCursor: tenantPage.nextCursor };
  }

  /** The newest backup of an instance (parent of the next incremental). */
  async latestBackup(instanceId: string): Promise<BackupRow | undefined> {
    return this.db
      .selectFrom('backups')
      .selectAll()
      .where('instanceId', '=', instanceId)
      .orderBy('id', 'desc')
      .executeTakeFirst();
  }

  /** Up to `limit` events with ids in (after, upTo], in id order; only `tenantId`'s when given. */
  async listEvents(after: number, limit: number, tenantId?: string, upTo?: number): Promise<Selectable<EventRow>[]> {
    let q = this.db.selectFrom('events').selectAll().where('id', '>', after).orderBy('id').limit(limit);
    if (tenantId !== undefined) q = q.where('tenantId', '=', tenantId);
    if (upTo !== undefined) q = q.where('id', '<=', upTo);
    return q.execute();
  }

  /** The id of the newest event (0 while the log is empty). */
  async lastEventId(): Promise<number> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('last'))
      .executeTakeFirst();
    return Number(row?.last ?? 0);
  }
}
