import type { Transaction } from 'kysely';
import {
  decideReport,
  factsNeeded,
  type Report,
  type ReportDecision,
  type ReportedTask,
} from '../domain/report-outcome.js';
import type { TaskState } from '../domain/task.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { BackupRepository } from '../store/backup-repository.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import { transact, type Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import type { ReportFence, ReportRepository } from '../store/report-repository.js';
import type { Database, TaskRow } from '../store/schema.js';
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
    if (reports.length === 0) return { ended: [], requeued: [] };
    const outcome = await transact(this.stores.db, async (trx) => {
      // Built inside the transaction: a retried transaction starts from an empty outcome.
      const outcome: ApplyOutcome = { ended: [], requeued: [] };
      for (const report of reports) await this.applyOne(trx, agentId, report, now, outcome);
      return outcome;
    });
    const { metrics, log } = this.opts;
    for (const r of reports) metrics?.reports.inc({ kind: r.kind });
    for (const e of outcome.ended) {
      metrics?.tasksEnded.inc({ state: e.state });
      log?.info({ taskId: e.taskId, state: e.state, agentId }, 'task ended');
    }
    // Requeued tasks wait for the next timed round: waking now would hand them straight back to
    // the agent that just refused them.
    if (outcome.ended.length > 0) this.opts.tasksEnded?.();
    return outcome;
  }

  private async applyOne(trx: Trx, agentId: string, report: Report, now: number, outcome: ApplyOutcome) {
    const { rows, catalog, events, backups, retention, endings } = this.stores;
    const task = await rows.task(trx, report.taskId);
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
    });
    if (decision.action === 'ignore') return;
    const row = task!;
    const fence: ReportFence = { taskId: row.id, agentId, attempt: report.attempt };
    switch (decision.action) {
      case 'record-event': {
        const r = decision.event;
        await events.fromAgent(trx, {
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
        });
        return;
      }
      case 'record-identity':
        return catalog.recordRepositoryIdentity(trx, row.providerId, decision.identity);
      case 'start':
        if (await rows.move(trx, fence, decision.from, decision.changes))
          await events.forTask(trx, row, decision.event.type, decision.event.message, now);
        return;
      case 'requeue':
        if (await rows.move(trx, fence, decision.from, decision.changes)) outcome.requeued.push(row.id);
        return;
      case 'progress':
        // Stored once per agent and spool seq: a re-sent report moves nothing.
        if (await rows.storeProgress(trx, agentId, decision.progress))
          await rows.move(trx, fence, decision.from, decision.changes);
        return;
      case 'end': {
        if (!(await rows.move(trx, fence, decision.from, decision.changes))) return;
        if (decision.backup) await backups.recordFromTask(trx, row, decision.backup, now);
        await events.forTask(trx, row, decision.event.type, decision.event.message, now);
        // In the same transaction: a backup recorded is never left without its retention deletes.
        if (decision.backup) await retention.afterBackup(trx, row, now);
        await endings.ended(trx, row, decision.end, now);
        outcome.ended.push({ taskId: row.id, state: decision.end.state });
        return;
      }
    }
  }
}

/** What the report rule looks at of a task row (a cancel asked for is a flag there). */
function reportedTask(row: TaskRow): ReportedTask {
  return { ...row, cancelRequested: row.cancelRequested === 1 };
}
