import {
  agentMayReportEvent,
  FailureCodes,
  RejectReasons,
  REPOSITORY_IDENTITY_EVENT,
  REPOSITORY_NOT_FOUND,
  SYNC_PAGE_EVENT,
} from '@cairn/proto/vocabulary';
import { rejectionOutcome } from './dispatch-rules.js';
import { admission, type ActiveMaintenance } from './maintenance.js';
import { reportedIdentity } from './repository-identity.js';
import { noRepositoryYet, pagedListing, pagesComplete, parseListing, readSyncPage, type StoredPages } from './sync.js';
import { HELD_STATES, etaSeconds, outcomeState, statesLeadingTo, type TaskEnd, type TaskState } from './task.js';

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
      outcome: ResultOutcome;
    };

export type EventReport = Extract<Report, { kind: 'event' }>;
export type ProgressReport = Extract<Report, { kind: 'progress' }>;

/** What an agent's result says: a success (with the backup it made, if any) or a failure. */
export type ResultOutcome =
  | { ok: true; backup: ReportedBackup | null; output: string | null }
  | { ok: false; code: string; message: string; retryable: boolean };

export interface ReportedBackup {
  externalId: string;
  sizeBytes: number;
  addedBytes: number;
  mode: string;
  parentExternalId: string;
}

/** A sync's progress message, and its end event's, when its connection has no repository yet. */
export const NO_REPOSITORY_YET = 'no repository yet: nothing to list (see the drift report)';

/** What the decision looks at of the task a report names (as the report's transaction reads it). */
export interface ReportedTask {
  kind: string;
  state: string;
  attempt: number;
  agentId: string | null;
  cancelRequested: boolean;
  startedAt: number | null;
  zone: string;
  pinnedAgentId: string | null;
  plugin: string;
}

/** Everything the report rule looks at; gathered by lifecycle/reports.ts, decided here without I/O. */
export interface ReportFacts {
  /** The agent whose session carried the report. */
  agentId: string;
  report: Report;
  /** The task the report names; undefined when there is none. */
  task: ReportedTask | undefined;
  now: number;
  /**
   * Until when a report that shows the agent alive holds the task: its arrival plus the lease, by
   * the real time hosts keep (leases count real time, whatever a test's clock says).
   */
  leaseUntil: number;
  /** The maintenance in force, when {@link factsNeeded} asks for it (a backup refused as draining). */
  maintenance?: ActiveMaintenance;
  /**
   * What the sync's connection has seen, when {@link factsNeeded} asks for it (a sync that found no
   * repository): a recorded repository identity, any backup recorded through it.
   */
  repositoryHistory?: { identityRecorded: boolean; recorded: boolean };
  /** The pages stored of the reported attempt, when {@link factsNeeded} asks for it (a paged sync's result). */
  syncPages?: StoredPages;
}

/** The task fields a report changes (named as the task's fields). */
export interface TaskChanges {
  state?: TaskState;
  startedAt?: number;
  endedAt?: number;
  leaseExpiresAt?: number | null;
  agentId?: null;
  dispatchedAt?: null;
  percent?: number;
  bytesDone?: number;
  bytesTotal?: number;
  progressMessage?: string | null;
  etaSeconds?: number | null;
  output?: string | null;
  errorCode?: string;
  errorMessage?: string;
}

/**
 * A move of the task, to be written only if the task is still held by the reporting agent under the
 * reported attempt and in one of `from` (the conditional update is the arbiter: a concurrent
 * change wins over what the decision read).
 */
interface Move {
  from: TaskState[];
  changes: TaskChanges;
}

export type ReportDecision =
  /** Nothing to write: an unknown task, another agent's, a superseded attempt, an ended task, a repeat. */
  | { action: 'ignore'; why: string }
  /** A plugin's event: appended to the log (unique per agent and spool seq), even after the task ended. */
  | { action: 'record-event'; event: EventReport }
  /** A plugin named the repository its connection reached: recorded while the connection records none. */
  | { action: 'record-identity'; identity: string }
  /** A page of a running sync's listing: stored (once per task, attempt and page), shown to no one. */
  | { action: 'record-sync-page'; page: number; points: number; body: string; bad: string | null }
  /** The agent took the task: it runs. */
  | ({ action: 'start'; event: { type: string; message: string } } & Move)
  /** Progress: stored (unique per agent and spool seq), then the task's figures and lease move. */
  | ({ action: 'progress'; progress: ProgressReport } & Move)
  /** The agent refused for a reason that hands the task back to the queue. */
  | ({ action: 'requeue' } & Move)
  /**
   * The task ends (a result, or a refusal that fails it): its end event, the backup record a
   * successful backup leaves (and its retention), then the task-end reactions.
   */
  | ({
      action: 'end';
      end: TaskEnd;
      event: { type: string; message: string };
      /** The backup to record (a backup task's success that named one). */
      backup: ReportedBackup | null;
    } & Move);

/** Why a report names nothing this agent may change, or undefined when it does. */
function foreign(f: Pick<ReportFacts, 'agentId' | 'report' | 'task'>): string | undefined {
  if (!f.task) return 'no such task';
  if (f.task.agentId !== f.agentId) return 'the task is not held by this agent';
  if (f.task.attempt !== f.report.attempt)
    return `attempt ${f.report.attempt} is not the task's attempt ${f.task.attempt}`;
  return undefined;
}

const held = (state: string) => HELD_STATES.includes(state as TaskState);
const heldLeadingTo = (to: TaskState) => statesLeadingTo(to).filter(held);

/**
 * The facts beyond the task that deciding this report needs, read only then: maintenance for a
 * backup refused because the agent drains, the connection's history for a sync that found no repository.
 */
export function factsNeeded(f: Pick<ReportFacts, 'agentId' | 'report' | 'task'>): {
  maintenance: boolean;
  repositoryHistory: boolean;
  syncPages: boolean;
} {
  const none = { maintenance: false, repositoryHistory: false, syncPages: false };
  const { report, task } = f;
  if (foreign(f) !== undefined || !held(task!.state)) return none;
  return {
    maintenance: report.kind === 'rejected' && report.reasonCode === RejectReasons.DRAINING && task!.kind === 'backup',
    repositoryHistory:
      report.kind === 'result' &&
      task!.kind === 'sync' &&
      !report.outcome.ok &&
      report.outcome.code === REPOSITORY_NOT_FOUND,
    syncPages:
      report.kind === 'result' &&
      task!.kind === 'sync' &&
      report.outcome.ok &&
      pagedListing(report.outcome.output) !== undefined,
  };
}

/**
 * What a report does to its task. Every change is fenced by agent and attempt (a report of a
 * superseded attempt, or from an agent that does not hold the task, changes nothing) and may only
 * make a move the state machine allows from a held state; events are a log, kept even after the
 * task's result.
 *
 * @example decideReport({ agentId: 'a', report: { kind: 'accepted', seq: 1, taskId: 't', attempt: 1, at: 5 }, task: { ...task, state: 'dispatched', agentId: 'a', attempt: 1 }, now: 10, leaseUntil: 40 })
 * // → { action: 'start', from: ['dispatched'], changes: { state: 'running', startedAt: 5, leaseExpiresAt: 40 }, event: … }
 */
export function decideReport(f: ReportFacts): ReportDecision {
  const why = foreign(f);
  if (why !== undefined) return { action: 'ignore', why };
  const { report, agentId, now } = f;
  const task = f.task!;
  if (report.kind === 'event') {
    if (!agentMayReportEvent(report.type))
      return {
        action: 'ignore',
        why: `the event type ${report.type} is the control plane's own: an agent may not report it`,
      };
    if (report.type === SYNC_PAGE_EVENT) return syncPage(task, report);
    if (report.type !== REPOSITORY_IDENTITY_EVENT) return { action: 'record-event', event: report };
    const identity = reportedIdentity(report.data);
    return identity === undefined
      ? { action: 'ignore', why: 'the repository identity is not readable' }
      : { action: 'record-identity', identity };
  }
  if (!held(task.state)) return { action: 'ignore', why: `the task is ${task.state}` };
  switch (report.kind) {
    case 'accepted':
      if (task.state !== 'dispatched') return { action: 'ignore', why: 'the task was accepted already' };
      return {
        action: 'start',
        from: heldLeadingTo('running'),
        changes: { state: 'running', startedAt: report.at, leaseExpiresAt: f.leaseUntil },
        event: { type: 'task.started', message: `${task.kind} task started on agent ${agentId}` },
      };
    case 'rejected': {
      const rule = rejection(f, task, report.reasonCode);
      if (rule.requeue) {
        return {
          action: 'requeue',
          from: heldLeadingTo('queued'),
          changes: { state: 'queued', agentId: null, leaseExpiresAt: null, dispatchedAt: null },
        };
      }
      const message = rule.message ?? report.message;
      return {
        action: 'end',
        from: heldLeadingTo('failed'),
        changes: { state: 'failed', endedAt: now, errorCode: rule.code, errorMessage: message },
        end: { state: 'failed', error: { code: rule.code, message }, output: null },
        event: { type: 'task.failed', message: `${task.kind} task refused by agent ${agentId}: ${message}` },
        backup: null,
      };
    }
    case 'progress': {
      const startedAt = task.startedAt ?? report.at;
      return {
        action: 'progress',
        progress: report,
        from: [...HELD_STATES],
        changes: {
          state: 'running',
          startedAt,
          percent: report.percent,
          bytesDone: report.bytesDone,
          bytesTotal: report.bytesTotal,
          progressMessage: report.message || null,
          etaSeconds: etaSeconds(startedAt, report.at, report.percent),
          leaseExpiresAt: f.leaseUntil,
        },
      };
    }
    case 'result': {
      const { outcome: o, noRepository } = resultOf(f, task, report.outcome);
      const state = outcomeState(o.ok ? { ok: true } : { ok: false, errorCode: o.code }, task.cancelRequested);
      const empty = noRepository !== undefined;
      return {
        action: 'end',
        from: heldLeadingTo(state),
        changes: {
          state,
          endedAt: now,
          startedAt: task.startedAt ?? report.at,
          ...(o.ok
            ? { percent: 100, etaSeconds: 0, output: o.output }
            : { errorCode: o.code, errorMessage: o.message }),
          ...(empty ? { progressMessage: NO_REPOSITORY_YET } : {}),
        },
        end: o.ok
          ? { state, error: null, output: o.output, ...(empty ? { noRepository } : {}) }
          : { state, error: { code: o.code, message: o.message }, output: null },
        event: {
          type: `task.${state}`,
          message: o.ok
            ? `${task.kind} task succeeded${empty ? `: ${NO_REPOSITORY_YET}` : ''}`
            : `${task.kind} task ${state}: ${o.code}: ${o.message}`,
        },
        backup: o.ok && task.kind === 'backup' ? o.backup : null,
      };
    }
  }
}

/**
 * The outcome an agent's result stands for. A sync's listing the control plane cannot read fails
 * it (nothing is compared with it). A sync that found no repository through a connection that
 * never reached one (`noRepositoryYet`: no recorded identity, no record) succeeds with an empty
 * listing, `noRepository` keeping what the plugin said; through any other connection it fails.
 */
function resultOf(
  f: ReportFacts,
  task: ReportedTask,
  outcome: ResultOutcome,
): { outcome: ResultOutcome; noRepository?: string } {
  if (task.kind !== 'sync') return { outcome };
  const paged = outcome.ok ? pagedListing(outcome.output) : undefined;
  if (paged) {
    const why = pagesComplete(paged, needed(f.syncPages, 'syncPages'));
    return why === undefined
      ? { outcome }
      : { outcome: { ok: false, code: FailureCodes.INVALID_RESULT, message: why, retryable: true } };
  }
  if (outcome.ok) {
    const listing = parseListing(outcome.output);
    return listing.ok
      ? { outcome }
      : { outcome: { ok: false, code: FailureCodes.INVALID_RESULT, message: listing.reason, retryable: false } };
  }
  if (outcome.code !== REPOSITORY_NOT_FOUND) return { outcome };
  if (!noRepositoryYet(outcome.code, needed(f.repositoryHistory, 'repositoryHistory'))) return { outcome };
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
function rejection(
  f: ReportFacts,
  task: ReportedTask,
  reasonCode: string,
): { requeue: true } | { requeue: false; code: string; message: string | undefined } {
  if (reasonCode === RejectReasons.DRAINING && task.kind === 'backup') {
    const verdict = admission('backup', needed(f.maintenance, 'maintenance'), {
      zone: task.zone,
      agentId: task.pinnedAgentId,
      plugin: task.plugin,
    });
    if (!verdict.allowed) return { requeue: false, code: verdict.code, message: verdict.message };
  }
  const rule = rejectionOutcome(reasonCode);
  return rule.requeue ? rule : { ...rule, message: undefined };
}

/**
 * A page of a sync's listing: stored only while the sync runs under the reported attempt (a page
 * of an ended task, or of another kind of task, is no page), and shown to no one either way.
 */
function syncPage(task: ReportedTask, report: EventReport): ReportDecision {
  if (task.kind !== 'sync') return { action: 'ignore', why: `a ${task.kind} task has no listing pages` };
  if (!held(task.state)) return { action: 'ignore', why: `the task is ${task.state}` };
  const page = readSyncPage(report.data);
  if (!page.ok) return { action: 'ignore', why: page.reason };
  return { action: 'record-sync-page', page: page.page, points: page.points, body: page.body, bad: page.bad };
}

function needed<T>(fact: T | undefined, name: string): T {
  if (fact === undefined) throw new Error(`decideReport needs the ${name} fact (see factsNeeded)`);
  return fact;
}
