/**
 * The words both ends of the agent protocol use in string fields: operation names
 * (`TaskAssign.operation`), reject reasons (`TaskRejected.reason_code`) and the failure codes
 * Cairn itself gives a task (`TaskError.code`, stored as a task's `error.code`). The control
 * plane, the agent and the plugin SDK all take them from here, so one cannot rename a word the
 * others still send. The values are stored in databases and sent over the wire: never change
 * one, only add.
 *
 * Imported as `@cairn/proto/vocabulary`, which loads no codec (no protobufjs): plugins get it
 * through the SDK without the wire format.
 *
 * @example
 * import { FailureCodes, RejectReasons, requeues } from '@cairn/proto/vocabulary';
 * requeues(RejectReasons.NO_SLOT); // → true: a busy agent hands the task back to the queue
 * FailureCodes.AGENT_LOST; // → 'AGENT_LOST'
 */

/** `{ A: 'A', B: 'B' }` for a list of words, so code names a word instead of spelling it. */
function byName<T extends string>(words: readonly T[]): { readonly [K in T]: K } {
  return Object.freeze(Object.fromEntries(words.map((w) => [w, w]))) as { readonly [K in T]: K };
}

/** Operations a provider plugin may implement, and the kinds of task that run them. */
export const OPERATIONS = [
  'backup',
  'restore',
  'restore-volume',
  'delete-backup',
  'list-offerings',
  'sync',
  'preflight',
  /** Whether an instance runs or is stopped (asked before an in-place restore that needs it stopped). */
  'power-state',
  'configure-schedule',
  'deconfigure-schedule',
  /**
   * The backup system's own housekeeping of a repository (restic: `prune`), which may lock it
   * for long: run on the control plane's prune schedule per connection, never by a tenant's action.
   */
  'prune',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/**
 * What maintenance holds back: the operations that reach the backup system's repositories or
 * change its configuration. A drained agent (a maintenance scope, or a drain set on its host)
 * refuses them with DRAINING; the control plane fails a refused backup at once and keeps the others
 * queued until the maintenance ends. Restores, listings, syncs, preflights and power state go on.
 */
export const HELD_BY_MAINTENANCE: readonly Operation[] = [
  'backup',
  'delete-backup',
  'prune',
  'configure-schedule',
  'deconfigure-schedule',
];

export function isOperation(value: string): value is Operation {
  return (OPERATIONS as readonly string[]).includes(value);
}

/** Why an agent refuses an assignment (`TaskRejected.reason_code`). */
export const REJECT_REASONS = [
  /** No plugin of that name is loaded on the agent. */
  'NO_PLUGIN',
  /** The plugin does not list the operation in its capabilities. */
  'UNSUPPORTED_OPERATION',
  /** Every task slot of the agent is busy. */
  'NO_SLOT',
  /** The agent drains (maintenance): it takes no new backups. The control plane marks it draining. */
  'DRAINING',
  /** The assignment's parameters or provider configuration are not a JSON object. */
  'BAD_PARAMS',
  /** The agent is stopping: it finishes what it runs and takes nothing new. */
  'SHUTTING_DOWN',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
export const RejectReasons = byName(REJECT_REASONS);

/**
 * Reasons that say "not now, not here" rather than "never": the task goes back to the queue (for
 * another agent, or this one later). Any other reason fails the task, with the reason as its code.
 */
export const REQUEUE_REASONS: readonly RejectReason[] = [
  RejectReasons.NO_SLOT,
  RejectReasons.DRAINING,
  RejectReasons.SHUTTING_DOWN,
];

/** True when a refusal with this reason puts the task back in the queue. */
export function requeues(reasonCode: string): boolean {
  return (REQUEUE_REASONS as readonly string[]).includes(reasonCode);
}

/**
 * Codes Cairn itself ends a task with. A plugin's own `PluginError` code passes through as it is,
 * and a refusal that is not requeued fails the task with its reject reason as the code.
 */
export const FAILURE_CODES = [
  // Given by the agent (and the SDK's host guard) while it runs a plugin:
  /** Cancelled through the API (also a queued task cancelled before any agent got it). */
  'CANCELLED',
  /** The operation ran past the task timeout. */
  'PLUGIN_TIMEOUT',
  /** The plugin threw something other than a PluginError, exited, crashed its worker, or returned an invalid result. */
  'PLUGIN_CRASHED',
  /** The provider has no function for the operation its manifest lists. */
  'UNSUPPORTED_OPERATION',
  /** The agent stopped (second signal, end of the shutdown grace, or a restart found the task running). Retryable. */
  'AGENT_INTERRUPTED',
  /** The agent was cut off from the control plane for too long and stopped the backup. Retryable. */
  'AGENT_DISCONNECTED',
  /** A newer attempt of the same task reached the agent; the old one is stopped. */
  'SUPERSEDED',
  /** The result does not fit in one frame. */
  'RESULT_TOO_LARGE',
  // Given by the control plane:
  /** The agent holding the task did not come back within its lease. */
  'AGENT_LOST',
  /** The assignment is larger than the agent's frame limit. */
  'ASSIGNMENT_TOO_LARGE',
  /** The assignment was sent the maximum number of times and never accepted. */
  'ASSIGNMENT_UNDELIVERED',
  /** The task's provider connection was deleted before the task was sent. */
  'PROVIDER_GONE',
  /** The agent reported a result the control plane cannot store (a backup external id over the limit). */
  'INVALID_RESULT',
  /** The agent refused the task without a reason. */
  'REJECTED',
  /** The agent reported a failure without a code. */
  'UNKNOWN',
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];
export const FailureCodes = byName(FAILURE_CODES);

/**
 * The task event a plugin emits (through the SDK's `reportIdentity`) with `data: {identity}` when
 * it opened a repository through a connection that records no identity yet. The control plane
 * records that identity on the task's provider connection, if it still records none, and does not
 * show the event to anyone.
 */
export const REPOSITORY_IDENTITY_EVENT = 'repository.identity';

/**
 * A page of a sync's listing, as the agent sends it when the whole listing would not fit in one
 * result (`data: {page, points}`, pages numbered from 0 in listing order). The result then
 * carries `{"cairnPages": n, "points": m}` instead of the listing, and the control plane compares
 * the listing with its records only when it holds all `n` pages of that attempt. The event is not
 * shown to anyone.
 */
export const SYNC_PAGE_EVENT = 'sync.page';

/** The most UTF-8 bytes of restore points (JSON) one sync page carries. */
export const SYNC_PAGE_BYTES = 48_000;

/**
 * The event type prefixes the control plane writes itself: the life of tasks, jobs, backups,
 * schedules, offerings, maintenance, the RPO watch, syncs and agents. A report from an agent
 * (its plugins' events travel that way) may not use them, so that nothing an agent or a plugin
 * sends can pass for the service's own record (a `task.succeeded`, a `maintenance.ready`): the
 * control plane ignores such an event, and the agent refuses it from a plugin.
 */
export const RESERVED_EVENT_PREFIXES = [
  'task.',
  'job.',
  'backup.',
  'schedule.',
  'offering.',
  'maintenance.',
  'rpo.',
  'agent.',
  'tenant.',
  'quota.',
  'provider.sync',
  'sync.',
] as const;

/** A reserved type an agent sends itself: how many of a task's events it dropped (sync pages are the other). */
export const EVENTS_DROPPED_EVENT = 'agent.events_dropped';

/** Whether the type starts with one of RESERVED_EVENT_PREFIXES: a plugin may not emit it. */
export function reservedEventType(type: string): boolean {
  return RESERVED_EVENT_PREFIXES.some((prefix) => type.startsWith(prefix));
}

/** Whether an agent's report may carry this event type: a plugin's, or the agent's own (dropped events, sync pages). */
export function agentMayReportEvent(type: string): boolean {
  return type === EVENTS_DROPPED_EVENT || type === SYNC_PAGE_EVENT || !reservedEventType(type);
}

/** The longest repository identity the control plane records; a longer one is ignored. */
export const MAX_REPOSITORY_IDENTITY = 255;

/**
 * The code an operation of a plugin that declares `repository-identity` fails with when the
 * connection's repository is not there (it creates none). The control plane reads a sync failing
 * so through a connection that never reached a repository (no recorded identity, no restore
 * points) as "no repository yet": an empty listing, not a failure.
 */
export const REPOSITORY_NOT_FOUND = 'REPOSITORY_NOT_FOUND';
