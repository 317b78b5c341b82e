import type { Transaction } from 'kysely';
import { FailureCodes, RejectReasons, REPOSITORY_IDENTITY_EVENT, REPOSITORY_NOT_FOUND } from '@cairn/proto/vocabulary';
import { rejectionOutcome } from '../domain/dispatch-rules.js';
import { admission } from '../domain/maintenance.js';
import { reportedIdentity } from '../domain/repository-identity.js';
import { noRepositoryYet, parseListing } from '../domain/sync.js';
import { HELD_STATES, etaSeconds, outcomeState, statesLeadingTo, type TaskState } from '../domain/task.js';
import type { BackupRepository } from './backup-repository.js';
import { transact, type Db } from './db.js';
import type { EventRepository } from './event-repository.js';
import { activeMaintenance } from './maintenance-repository.js';
import type { RetentionRepository } from './retention-repository.js';
import type { Database, TaskRow } from './schema.js';
import type { TaskEndings } from './task-endings.js';

type Trx = Transaction<Database>;

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

type Outcome = Extract<Report, { kind: 'result' }>['outcome'];

/** A sync's progress message, and its end event's, when its connection has no repository yet. */
const NO_REPOSITORY_YET = 'no repository yet: nothing to list (see the drift report)';

/** What applying a batch of reports changed, for logs and wake-ups. */
export interface ApplyOutcome {
  ended: { taskId: string; state: TaskState }[];
  requeued: string[];
}

/**
 * Applies what agents report about their tasks: acceptance, refusal, progress, events, results
 * (and the backup record a successful backup leaves). A batch is one transaction.
 */
export class ReportRepository {
  constructor(
    private readonly db: Db,
    private readonly events: EventRepository,
    private readonly backups: BackupRepository,
    private readonly retention: RetentionRepository,
    private readonly endings: TaskEndings,
  ) {}

  /**
   * Applies an agent's reports in one transaction. Every write is conditional on the task being
   * held by this agent under the reported attempt (the fencing token); a report of a superseded
   * attempt, of a task that already ended, or one already stored changes nothing.
   */
  async apply(agentId: string, reports: Report[], leaseMs: number, now = Date.now()): Promise<ApplyOutcome> {
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
        await this.events.forTask(trx, task, 'task.started', `${task.kind} task started on agent ${agentId}`, now);
        return;
      }
      case 'rejected': {
        const rule = await this.rejectionRule(trx, task, report.reasonCode);
        if (rule.requeue) {
          await fenced('queued')
            .set({ state: 'queued', agentId: null, leaseExpiresAt: null, dispatchedAt: null })
            .execute();
          outcome.requeued.push(task.id);
          return;
        }
        const message = rule.message ?? report.message;
        await fenced('failed')
          .set({ state: 'failed', endedAt: now, errorCode: rule.code, errorMessage: message })
          .execute();
        await this.events.forTask(
          trx,
          task,
          'task.failed',
          `${task.kind} task refused by agent ${agentId}: ${message}`,
          now,
        );
        await this.endings.ended(
          trx,
          task,
          { state: 'failed', error: { code: rule.code, message }, output: null },
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
        const { outcome: o, noRepository } = await this.resultOf(trx, task, report.outcome);
        const state = outcomeState(o.ok ? { ok: true } : { ok: false, errorCode: o.code }, task.cancelRequested === 1);
        const r = await fenced(state)
          .set({
            state,
            endedAt: now,
            startedAt: task.startedAt ?? report.at,
            ...(o.ok
              ? { percent: 100, etaSeconds: 0, output: o.output }
              : { errorCode: o.code, errorMessage: o.message }),
            ...(noRepository !== undefined ? { progressMessage: NO_REPOSITORY_YET } : {}),
          })
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) return;
        const recorded = o.ok && task.kind === 'backup' && o.backup !== null;
        if (recorded) await this.backups.recordFromTask(trx, task, o.backup!, now);
        const message = o.ok
          ? `${task.kind} task succeeded${noRepository !== undefined ? `: ${NO_REPOSITORY_YET}` : ''}`
          : `${task.kind} task ${state}: ${o.code}: ${o.message}`;
        await this.events.forTask(trx, task, `task.${state}`, message, now);
        // In the same transaction: a backup recorded is never left without its retention deletes.
        if (recorded) await this.retention.afterBackup(trx, task, now);
        await this.endings.ended(
          trx,
          task,
          o.ok
            ? { state, error: null, output: o.output, ...(noRepository !== undefined ? { noRepository } : {}) }
            : { state, error: { code: o.code, message: o.message }, output: null },
          now,
        );
        outcome.ended.push({ taskId: task.id, state });
        return;
      }
    }
  }

  /**
   * The outcome an agent's result stands for. A sync's listing the control plane cannot read fails
   * it (nothing is compared with it). A sync that found no repository through a connection that
   * never reached one (`noRepositoryYet`: no recorded identity, no record) succeeds with an empty
   * listing, `noRepository` keeping what the plugin said; through any other connection it fails.
   */
  private async resultOf(
    trx: Trx,
    task: TaskRow,
    outcome: Outcome,
  ): Promise<{ outcome: Outcome; noRepository?: string }> {
    if (task.kind !== 'sync') return { outcome };
    if (outcome.ok) {
      const listing = parseListing(outcome.output);
      return listing.ok
        ? { outcome }
        : { outcome: { ok: false, code: FailureCodes.INVALID_RESULT, message: listing.reason, retryable: false } };
    }
    if (outcome.code !== REPOSITORY_NOT_FOUND) return { outcome };
    const provider = await trx
      .selectFrom('providers')
      .select('repositoryIdentity')
      .where('id', '=', task.providerId)
      .executeTakeFirst();
    const history = {
      identityRecorded: (provider?.repositoryIdentity ?? null) !== null,
      recorded: await this.backups.anyOfProvider(trx, task.providerId),
    };
    if (!noRepositoryYet(outcome.code, history)) return { outcome };
    return { outcome: { ok: true, backup: null, output: '[]' }, noRepository: outcome.message };
  }

  /**
   * What a refusal does. A backup refused because the agent drains fails with code `maintenance`
   * and the message when a scope in maintenance covers it (its zone, the agent it is pinned to,
   * global; a drain set on the agent's host counts for that agent, and, unpinned, the zone counts
   * once every agent there able to run it is in maintenance); otherwise it goes back to the
   * queue, where placement passes over agents in maintenance. The hello, not a refusal, says
   * whether an agent is drained on its host.
   */
  private async rejectionRule(trx: Trx, task: TaskRow, reasonCode: string) {
    if (reasonCode === RejectReasons.DRAINING && task.kind === 'backup') {
      const verdict = admission('backup', await activeMaintenance(trx), {
        zone: task.zone,
        agentId: task.pinnedAgentId,
        plugin: task.plugin,
      });
      if (!verdict.allowed) return { requeue: false as const, code: verdict.code, message: verdict.message };
    }
    return { ...rejectionOutcome(reasonCode), message: undefined };
  }

  private async recordAgentEvent(trx: Trx, agentId: string, task: TaskRow, report: Extract<Report, { kind: 'event' }>) {
    if (report.type === REPOSITORY_IDENTITY_EVENT) return this.recordIdentity(trx, task, report.data);
    await this.events.fromAgent(trx, {
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
    });
  }

  /**
   * A plugin's report of the repository its task's connection reached: recorded on the connection
   * only while it records none (the first contact decides; a plugin that finds another one fails
   * instead, until an SP admin clears it). It is not an event anyone is shown: a tenant never
   * learns which repository holds its backups, and a replayed report changes nothing.
   */
  private async recordIdentity(trx: Trx, task: TaskRow, data: string | null): Promise<void> {
    const identity = reportedIdentity(data);
    if (identity === undefined) return;
    await trx
      .updateTable('providers')
      .set({ repositoryIdentity: identity })
      .where('id', '=', task.providerId)
      .where('repositoryIdentity', 'is', null)
      .execute();
  }
}
