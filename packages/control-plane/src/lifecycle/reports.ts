import type { Transaction } from 'kysely';
import {
  decideReport,
  factsNeeded,
  type ProgressReport,
  type Report,
  type ReportDecision,
  type ReportedTask,
  type TaskChanges,
} from '../domain/report-outcome.js';
import type { TaskState } from '../domain/task.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { BackupRepository } from '../store/backup-repository.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import { transact, type Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import { taskEvent } from '../store/event-log.js';
import type { ReportFence, ReportRepository } from '../store/report-repository.js';
import type { Database, TaskRow } from '../store/schema.js';
import type { SyncRepository } from '../store/sync-repository.js';
import type { TaskEndings } from '../store/task-endings.js';
import type { Retention } from './retention.js';
import type { Clock } from '../clock.js';
import type { MaintenanceGate } from './maintenance.js';

type Trx = Transaction<Database>;

/** What applying a batch of reports changed, for logs and wake-ups. */
export interface ApplyOutcome {
  ended: { taskId: string; state: TaskState }[];
  requeued: string[];
}

/** One agent's reports, in its spool order, as its session handed them in. */
export interface ReportBatch {
  agentId: string;
  reports: Report[];
}

/** The repositories a report's decision is applied with. */
export interface ReportStores {
  db: Db;
  rows: ReportRepository;
  catalog: CatalogRepository;
  events: EventRepository;
  backups: BackupRepository;
  retention: Retention;
  endings: TaskEndings;
  /** Where maintenance is asked: a report's decision may need what is in maintenance now. */
  maintenanceGate: MaintenanceGate;
  /** Where the pages of a paged sync listing are kept until its result. */
  syncs: SyncRepository;
}

export interface ReportOptions {
  /** What time it is: when a report was received. */
  clock: Clock;
  /** The real time hosts keep, which leases count (see the dispatcher's `wireClock`). */
  wireClock: Clock;
  /** How long an agent's hold on a task lasts past its latest sign of life. */
  leaseMs: number;
  /** Called after a batch that ended tasks committed (the dispatcher has slots to fill). */
  tasksEnded?: () => void;
  log?: Logger;
  metrics?: Metrics;
}

/**
 * Where agents' reports go (an agent session hands each batch here): acceptance, refusal,
 * progress, events, results. Each report's facts are read in the batch's transaction,
 * domain/report-outcome.ts decides what it does, and it is applied here with the repositories;
 * every move of the task is a conditional update fenced by agent and attempt, the arbiter of
 * what the decision read. A task that ends runs its end reactions (lifecycle/task-end.ts) in the
 * same transaction.
 */
export class Reports {
  constructor(
    private readonly stores: ReportStores,
    private readonly opts: ReportOptions,
  ) {}

  /**
   * Applies an agent's reports in one transaction; a report of a superseded attempt, of a task
   * that already ended, or one already stored changes nothing.
   */
  async apply(agentId: string, reports: Report[], now = this.opts.clock.now()): Promise<ApplyOutcome> {
    return this.applyTick([{ agentId, reports }], now);
  }

  /**
   * Applies the batches of one tick (several agents' sessions) in one transaction, each agent's
   * in the order given, with the same outcome as applying the reports one by one. Every progress
   * report is stored (one insert for the tick; a repeat is skipped) and moves the task when it is
   * newer than the newest stored; its move is held back, and a newer one of the same task in the
   * tick takes its place, so one statement writes the tick's progress moves. The tasks named are
   * read in one query and kept current as the tick moves them; events go in one insert.
   */
  async applyTick(batches: ReportBatch[], now = this.opts.clock.now()): Promise<ApplyOutcome> {
    if (batches.every((b) => b.reports.length === 0)) return { ended: [], requeued: [] };
    const outcome = await transact(this.stores.db, async (trx) => {
      // Built inside the transaction: a retried transaction starts from an empty outcome.
      const tick = await this.readTick(trx, batches);
      for (const batch of batches)
        for (const report of batch.reports) await this.applyOne(trx, tick, batch.agentId, report, now);
      await this.moveProgress(trx, tick, [...tick.progressMoves.keys()]);
      await this.stores.rows.storeProgressMany(trx, tick.progress);
      return tick.outcome;
    });
    const { metrics, log } = this.opts;
    if (metrics) {
      const byKind = new Map<string, number>();
      for (const b of batches) for (const r of b.reports) byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + 1);
      for (const [kind, n] of byKind) metrics.reports.inc({ kind }, n);
    }
    for (const e of outcome.ended) {
      metrics?.tasksEnded.inc({ state: e.state });
      log?.info({ taskId: e.taskId, state: e.state, agentId: e.agentId }, 'task ended');
    }
    // Requeued tasks wait for the next timed round: waking now would hand them straight back to
    // the agent that just refused them.
    if (outcome.ended.length > 0) this.opts.tasksEnded?.();
    return { ended: outcome.ended.map(({ taskId, state }) => ({ taskId, state })), requeued: outcome.requeued };
  }

  /** What a tick reads up front: its tasks in one query, and each agent's newest stored progress in another. */
  private async readTick(trx: Trx, batches: ReportBatch[]): Promise<Tick> {
    const ids = new Set<string>();
    const progressFrom = new Map<string, { tasks: Set<string>; fromSeq: number }>();
    for (const { agentId, reports } of batches) {
      for (const r of reports) {
        ids.add(r.taskId);
        if (r.kind !== 'progress') continue;
        const p = progressFrom.get(agentId);
        if (p) {
          p.tasks.add(r.taskId);
          p.fromSeq = Math.min(p.fromSeq, r.seq);
        } else progressFrom.set(agentId, { tasks: new Set([r.taskId]), fromSeq: r.seq });
      }
    }
    const found = await this.stores.rows.tasks(trx, [...ids]);
    const tasks = new Map<string, TaskRow | undefined>([...ids].map((id) => [id, found.get(id)]));
    const newestProgress = await this.stores.rows.newestProgress(trx, progressFrom);
    return {
      tasks,
      newestProgress,
      progress: new Map(),
      progressMoves: new Map(),
      outcome: { ended: [], requeued: [] },
    };
  }

  /**
   * Writes the progress moves the tick holds back for `taskIds`, in one statement (they all leave
   * the same states and change the same fields). The tick's copies already follow them; when fewer
   * moved than were held (something else moved a task), those tasks are read again when next asked.
   */
  private async moveProgress(trx: Trx, tick: Tick, taskIds: string[]): Promise<void> {
    const moves = taskIds.flatMap((id) => tick.progressMoves.get(id) ?? []);
    if (moves.length === 0) return;
    for (const id of taskIds) tick.progressMoves.delete(id);
    const moved = await this.stores.rows.moveMany(trx, moves[0]!.from, moves);
    if (moved !== moves.length) for (const id of taskIds) tick.tasks.delete(id);
  }

  /** The task as this tick knows it: read up front, kept current by its moves, read again after a move that missed. */
  private async taskOf(trx: Trx, tick: Tick, report: Report): Promise<TaskRow | undefined> {
    const { taskId } = report;
    // A progress move held back for it is written first: this report is decided on the row after
    // it. Another progress report is decided on the tick's copy, which already follows the move.
    if (report.kind !== 'progress' && tick.progressMoves.has(taskId)) await this.moveProgress(trx, tick, [taskId]);
    if (!tick.tasks.has(taskId)) tick.tasks.set(taskId, await this.stores.rows.task(trx, taskId));
    return tick.tasks.get(taskId);
  }

  /** The conditional update (the arbiter); the tick's copy of the row follows what it did. */
  private async move(trx: Trx, tick: Tick, row: TaskRow, fence: ReportFence, move: Move): Promise<boolean> {
    const moved = await this.stores.rows.move(trx, fence, move.from, move.changes);
    if (moved) tick.tasks.set(row.id, { ...row, ...move.changes });
    else tick.tasks.delete(row.id); // something else moved it: read it again if asked
    return moved;
  }

  private async applyOne(trx: Trx, tick: Tick, agentId: string, report: Report, now: number) {
    const { catalog, events, backups, retention, endings } = this.stores;
    const task = await this.taskOf(trx, tick, report);
    const facts = {
      agentId,
      report,
      task: task && reportedTask(task),
      now,
      leaseUntil: this.opts.wireClock.now() + this.opts.leaseMs,
    };
    const needs = factsNeeded(facts);
    const decision: ReportDecision = decideReport({
      ...facts,
      ...(needs.maintenance ? { maintenance: (await this.stores.maintenanceGate.now(trx)).active } : {}),
      ...(needs.repositoryHistory
        ? {
            repositoryHistory: {
              identityRecorded: await catalog.repositoryIdentityRecorded(trx, task!.providerId),
              recorded: await backups.anyOfProvider(trx, task!.providerId),
            },
          }
        : {}),
      ...(needs.syncPages
        ? { syncPages: await this.stores.syncs.storedPages(trx, report.taskId, report.attempt) }
        : {}),
    });
    if (decision.action === 'ignore') return;
    const row = task!;
    const fence: ReportFence = { taskId: row.id, agentId, attempt: report.attempt };
    switch (decision.action) {
      case 'record-event': {
        const r = decision.event;
        events.appendMany(trx, [
          {
            tenantId: row.tenantId,
            type: r.type,
            at: r.at,
            message: r.message,
            taskId: row.id,
            instanceId: row.instanceId,
            jobId: null,
            agentId,
            data: r.data,
            sourceAgentId: agentId,
            sourceSeq: r.seq,
          },
        ]);
        return;
      }
      case 'record-identity':
        return catalog.recordRepositoryIdentity(trx, row.providerId, decision.identity);
      case 'record-sync-page':
        return this.stores.syncs.storePage(trx, {
          taskId: row.id,
          attempt: report.attempt,
          page: decision.page,
          points: decision.points,
          bad: decision.bad,
          body: decision.body,
        });
      case 'start':
        if (await this.move(trx, tick, row, fence, decision))
          events.appendMany(trx, [taskEvent(row, decision.event.type, decision.event.message, now)]);
        return;
      case 'requeue':
        if (await this.move(trx, tick, row, fence, decision)) tick.outcome.requeued.push(row.id);
        return;
      case 'progress': {
        // Stored once per agent and spool seq (a repeat is skipped by the insert).
        const mine = tick.progress.get(agentId);
        if (mine) mine.push(decision.progress);
        else tick.progress.set(agentId, [decision.progress]);
        // It moves the task only when newer than the newest stored (this tick's included): a
        // re-sent or superseded report moves nothing.
        const key = `${agentId}:${row.id}:${report.attempt}`;
        const stored = tick.newestProgress.get(key);
        if (stored !== undefined && stored >= report.seq) return;
        tick.newestProgress.set(key, report.seq);
        // Held back, written with the tick's other progress moves in one statement (or before the
        // next report of this task other than progress is decided); a newer progress report of the
        // task in the tick takes its place (it sets every field the held one does). The tick's
        // copy of the row follows the move at once, so what comes next is decided as if it were
        // written. Nothing else follows a progress move.
        const move = { fence, from: decision.from, changes: decision.changes };
        const held = (tick.progressMoves.get(row.id) ?? []).filter((m) => !sameFence(m.fence, fence));
        tick.progressMoves.set(row.id, [...held, move]);
        tick.tasks.set(row.id, { ...row, ...decision.changes });
        return;
      }
      case 'end': {
        if (!(await this.move(trx, tick, row, fence, decision))) return;
        if (decision.backup) await backups.recordFromTask(trx, row, decision.backup, now);
        events.appendMany(trx, [taskEvent(row, decision.event.type, decision.event.message, now)]);
        // In the same transaction: a backup recorded is never left without its retention deletes.
        if (decision.backup) await retention.afterBackup(trx, row, now);
        await endings.ended(trx, row, decision.end, now);
        tick.outcome.ended.push({ taskId: row.id, state: decision.end.state, agentId });
        return;
      }
    }
  }
}

/** A move a decision asks for. */
interface Move {
  from: readonly TaskState[];
  changes: TaskChanges;
}

/** What one tick's transaction knows and gathers. */
interface Tick {
  /** The tick's tasks by id (undefined: no such task), as its own moves left them. */
  tasks: Map<string, TaskRow | undefined>;
  /** The newest progress seq stored per `agentId:taskId:attempt`, this tick's included. */
  newestProgress: Map<string, number>;
  /** Progress rows to store, per agent. */
  progress: Map<string, ProgressReport[]>;
  /** Progress moves held back, by task: written together at the tick's end. */
  progressMoves: Map<string, { fence: ReportFence; from: readonly TaskState[]; changes: TaskChanges }[]>;
  outcome: { ended: { taskId: string; state: TaskState; agentId: string }[]; requeued: string[] };
}

const sameFence = (a: ReportFence, b: ReportFence) =>
  a.taskId === b.taskId && a.agentId === b.agentId && a.attempt === b.attempt;

/** What the report rule looks at of a task row (a cancel asked for is a flag there). */
function reportedTask(row: TaskRow): ReportedTask {
  return { ...row, cancelRequested: row.cancelRequested === 1 };
}
