/**
 * Pure rules of a backup job's run: the four sets an instance moves through, which instances may
 * start now (SEQUENTIAL or PARALLEL), what an ended backup does to the sets, when the run is over,
 * and the run's progress with an ETA from the throughput observed so far.
 *
 * A run starts with every instance of the job OUTDATED. An instance becomes ONGOING when its backup
 * task is made, then UPDATED (the backup succeeded) or ERROR (it failed, was cancelled, was lost,
 * or could not be made). SEQUENTIAL starts the next instance, in the job's order, only once no
 * instance is ONGOING; PARALLEL starts them all and lets the dispatcher's slots decide.
 */

export const JOB_SETS = ['OUTDATED', 'ONGOING', 'UPDATED', 'ERROR'] as const;
export type JobSet = (typeof JOB_SETS)[number];

export const EXECUTIONS = ['SEQUENTIAL', 'PARALLEL'] as const;
export type Execution = (typeof EXECUTIONS)[number];

/** The lowest priority reserved for the service provider; tenants may use 0 up to one below it. */
export const SP_PRIORITY_FLOOR = 50;
export const MAX_PRIORITY = 99;
/** The highest priority of the tenants' band. */
export const TENANT_MAX_PRIORITY = SP_PRIORITY_FLOOR - 1;

/** Whether a priority is in the service provider's band (50-99). */
export function inProviderBand(priority: number): boolean {
  return priority >= SP_PRIORITY_FLOOR;
}

/** One instance of a run: its place in the job's order and its set. */
export interface RunMember {
  instanceId: string;
  /** The position in the job's list: the backup order. */
  position: number;
  set: JobSet;
}

/** Every instance OUTDATED, in the job's order. Duplicates are a caller's bug. */
export function startRun(instanceIds: readonly string[]): RunMember[] {
  if (new Set(instanceIds).size !== instanceIds.length) {
    throw new Error(`a job lists an instance twice: ${instanceIds.join(', ')}`);
  }
  return instanceIds.map((instanceId, position) => ({ instanceId, position, set: 'OUTDATED' }));
}

/** The ids in each set, each in the job's order (what `GET /v1/backup-jobs/{id}` shows). */
export function setsOf(members: readonly RunMember[]): Record<Lowercase<JobSet>, string[]> {
  const ordered = [...members].sort((a, b) => a.position - b.position);
  const of = (set: JobSet) => ordered.filter((m) => m.set === set).map((m) => m.instanceId);
  return { outdated: of('OUTDATED'), ongoing: of('ONGOING'), updated: of('UPDATED'), error: of('ERROR') };
}

/**
 * The instances whose backup should be made now. SEQUENTIAL: the first OUTDATED in the job's order,
 * and only while none is ONGOING (never two at once). PARALLEL: every OUTDATED one.
 *
 * @example toStart('SEQUENTIAL', [{a: UPDATED}, {b: OUTDATED}, {c: OUTDATED}]) // → ['b']
 */
export function toStart(execution: Execution, members: readonly RunMember[]): string[] {
  const outdated = [...members].filter((m) => m.set === 'OUTDATED').sort((a, b) => a.position - b.position);
  if (execution === 'PARALLEL') return outdated.map((m) => m.instanceId);
  if (members.some((m) => m.set === 'ONGOING')) return [];
  return outdated.slice(0, 1).map((m) => m.instanceId);
}

/** How an instance's part of a run ended, as the task's end tells it. */
export type MemberOutcome = 'succeeded' | 'failed' | 'cancelled' | 'lost';

/**
 * The set an instance moves to: ONGOING when its task is made; UPDATED or ERROR when it ends;
 * ERROR at once when it is `refused` (its backup cannot be made, or may not be made now).
 */
export function moved(
  members: readonly RunMember[],
  instanceId: string,
  to: 'ONGOING' | 'refused' | MemberOutcome,
): RunMember[] {
  const next: JobSet = to === 'ONGOING' ? 'ONGOING' : to === 'succeeded' ? 'UPDATED' : 'ERROR';
  const allowed: JobSet = to === 'ONGOING' || to === 'refused' ? 'OUTDATED' : 'ONGOING';
  return members.map((m) => {
    if (m.instanceId !== instanceId) return m;
    if (m.set !== allowed) throw new Error(`instance ${instanceId} is ${m.set}; it cannot become ${next}`);
    return { ...m, set: next };
  });
}

/**
 * The error an instance keeps when its task ended without a restore point: the task's own, or
 * else its end state (code in capitals). None when it succeeded.
 *
 * @example memberError('lost', null) // → { code: 'LOST', message: 'the backup task ended lost' }
 */
export function memberError(
  outcome: MemberOutcome,
  error: { code: string; message: string } | null,
): { code: string; message: string } | null {
  if (outcome === 'succeeded') return null;
  return {
    code: error?.code ?? outcome.toUpperCase(),
    message: error?.message ?? `the backup task ended ${outcome}`,
  };
}

/**
 * Ends the rest of a run at once (cancel, or maintenance failing what did not start): every
 * OUTDATED instance (of `only`, when given) goes to ERROR. ONGOING ones are left to end through
 * their tasks.
 */
export function abandonOutdated(members: readonly RunMember[], only?: ReadonlySet<string>): RunMember[] {
  return members.map((m) =>
    m.set === 'OUTDATED' && (only === undefined || only.has(m.instanceId)) ? { ...m, set: 'ERROR' } : m,
  );
}

/** A run is over when nothing is OUTDATED or ONGOING. */
export function runFinished(members: readonly Pick<RunMember, 'set'>[]): boolean {
  return members.every((m) => m.set === 'UPDATED' || m.set === 'ERROR');
}

/** The instances a retry backs up: exactly the ERROR set, in the job's order. */
export function retryTargets(members: readonly RunMember[]): string[] {
  return setsOf(members).error;
}

/** May this caller give a job this priority? Tenants 0-49, the service provider 0-99. */
export function priorityAllowed(priority: number, isSpAdmin: boolean): boolean {
  if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) return false;
  return isSpAdmin || priority < SP_PRIORITY_FLOOR;
}

/** What of an offering decides whether a tenant's job may back up its instances. */
export interface OfferingPolicy {
  name: string;
  allowAdhoc: number;
  allowUserSchedules: number;
}

/**
 * Whether a job may back up an instance of this offering: a tenant's job only when the offering
 * allows ad-hoc backups or user schedules (otherwise the provider reserved it for its SLA); a job
 * the service provider manages, always. Create checks it for each instance, and every start of a
 * member checks it again, since the provider may close the offering meanwhile.
 * Answers why not, or null.
 */
export function memberRefusal(offering: OfferingPolicy, byServiceProvider: boolean): string | null {
  if (byServiceProvider || offering.allowAdhoc === 1 || offering.allowUserSchedules === 1) return null;
  return `offering ${offering.name} allows neither ad-hoc backups nor user schedules: the provider reserved it for its SLA`;
}

/**
 * Whether the service provider manages a job: its priority is in the provider's band (50-99),
 * which only an sp-admin may give. Every other job is the tenant's, held to the tenant's rules.
 */
export function managedBySp(priority: number): boolean {
  return inProviderBand(priority);
}

/**
 * The priority a job keeps after a change: a tenant never keeps one above its band, whoever set it.
 * When a tenant user (not an sp-admin) changes a job in any way, a priority of 50 or more drops to
 * 49 in the same write, and the job becomes the tenant's (held to the tenant's rules from then on).
 * The service provider's changes keep what it gives.
 *
 * @example priorityAfterChange(90, false) // → 49
 * @example priorityAfterChange(90, true) // → 90
 */
export function priorityAfterChange(priority: number, bySpAdmin: boolean): number {
  return bySpAdmin ? priority : Math.min(priority, TENANT_MAX_PRIORITY);
}

/** One instance's backup task as the run's progress sees it. */
export interface MemberProgress {
  set: JobSet;
  /** The task's own progress; absent before the task exists. */
  percent?: number;
  bytesDone?: number;
  bytesTotal?: number;
}

export interface RunProgress {
  /**
   * 0-100: how much of the run's planned work was done, over its instances (each counts equally:
   * an instance's size is unknown until its backup runs).
   */
  percent: number;
  bytesDone: number;
  /** Known so far: tasks that have not reported a size yet add nothing. */
  bytesTotal: number;
  /** From the bytes per second observed since the run started; null until it can be told. */
  etaSeconds: number | null;
}

/**
 * The run's progress, done of planned: an instance backed up counts 100 %; one whose backup runs, or
 * ended without a restore point (failed, cancelled, lost), counts what its task reported done; one
 * never started (still OUTDATED, or in ERROR without a task: cancelled first, refused) counts 0.
 * So a run cancelled mid-backup reads what it did, never 100 %. The ETA divides what is left (in
 * percent of the run) by the rate so far; a run that ended has 0 left to wait, whatever it did.
 *
 * @example runProgress([{ set: 'ERROR', percent: 46 }, { set: 'ERROR' }], 0, 1000) // → percent 23, etaSeconds 0
 */
export function runProgress(members: readonly MemberProgress[], startedAt: number, now: number): RunProgress {
  if (members.length === 0) return { percent: 100, bytesDone: 0, bytesTotal: 0, etaSeconds: 0 };
  let sum = 0;
  let bytesDone = 0;
  let bytesTotal = 0;
  for (const m of members) {
    sum += memberDone(m);
    bytesDone += m.bytesDone ?? 0;
    bytesTotal += m.bytesTotal ?? 0;
  }
  // To one decimal, and 100 only when all of it was done (99.95 is not 100).
  const percent = sum >= 100 * members.length ? 100 : Math.min(99.9, Math.round((sum / members.length) * 10) / 10);
  const elapsed = (now - startedAt) / 1000;
  const etaSeconds =
    percent >= 100 || runFinished(members)
      ? 0
      : percent <= 0 || elapsed <= 0
        ? null
        : Math.round((elapsed * (100 - percent)) / percent);
  return { percent, bytesDone, bytesTotal, etaSeconds };
}

/** How much of one instance's backup was done, in percent (see {@link runProgress}). */
function memberDone(m: MemberProgress): number {
  if (m.set === 'UPDATED') return 100;
  return m.set === 'OUTDATED' ? 0 : clampPercent(m.percent ?? 0);
}

function clampPercent(p: number): number {
  return Number.isFinite(p) ? Math.min(100, Math.max(0, p)) : 0;
}

/** Why an instance of a run went to ERROR without a task of its own. */
export const MEMBER_ERRORS = {
  /** The instance was deleted, or now belongs to another tenant than the job. */
  NO_INSTANCE: 'NO_INSTANCE',
  /** The instance has no backup offering (or it was deleted). */
  NO_OFFERING: 'NO_OFFERING',
  /** The offering's provider connection was deleted. */
  PROVIDER_GONE: 'PROVIDER_GONE',
  /** The run was cancelled before this instance's backup started. */
  CANCELLED: 'CANCELLED',
  /** The instance's offering no longer allows the job to back it up ({@link memberRefusal}). */
  NOT_ALLOWED: 'NOT_ALLOWED',
  /** The tenant is at a per-offering quota in the instance's offering (the job is the tenant's). */
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
} as const;

export const RUN_STATES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export type RunState = (typeof RUN_STATES)[number];

/** A finished run's state: cancelled when it was, failed when any instance ended in ERROR. */
export function finishedState(members: readonly RunMember[], cancelled: boolean): RunState {
  if (cancelled) return 'cancelled';
  return members.some((m) => m.set === 'ERROR') ? 'failed' : 'succeeded';
}

/** How a job schedule ends, as SCHED_ACTION's END_TYPE: never, after N runs, or at a time. */
export interface ScheduleEnd {
  endAfterRuns: number | null;
  endAt: number | null;
  /** Runs the schedule started so far. */
  runs: number;
}

/** True once a schedule fires no more: its N runs are done, or its end time has come. */
export function scheduleEnded(s: ScheduleEnd, now: number): boolean {
  return (s.endAfterRuns !== null && s.runs >= s.endAfterRuns) || (s.endAt !== null && now >= s.endAt);
}

/** A schedule's next fire, unless it ended by then (null). */
export function nextFireWithin(s: ScheduleEnd, next: number | null, now: number): number | null {
  if (next === null || scheduleEnded(s, now)) return null;
  return s.endAt !== null && next > s.endAt ? null : next;
}

/** How much run history the service provider keeps per backup job. */
export interface RunHistoryLimits {
  /** Runs kept per job, newest first. */
  keep: number;
  /** A finished run started longer ago than this is forgotten. */
  maxAgeMs: number;
}

/** What the history sweep knows of a run. */
export interface RunAge {
  id: string;
  startedAt: number;
  endedAt: number | null;
}

/**
 * The runs of one job to forget (with their members): those past the `keep` newest, and those
 * started more than `maxAgeMs` before `now`. Never the newest run, never a run still going, and
 * never one in `latestOf` (an instance's latest run, which its set in the job's view comes from).
 *
 * @param newestFirst the job's runs, newest first, from the newest on (positions count from it)
 * @example forgottenRuns([r3, r2, r1], new Set(), { keep: 2, maxAgeMs: DAY }, now) // → ['r1']
 */
export function forgottenRuns(
  newestFirst: readonly RunAge[],
  latestOf: ReadonlySet<string>,
  limits: RunHistoryLimits,
  now: number,
): string[] {
  return newestFirst
    .filter(
      (r, i) =>
        i > 0 && r.endedAt !== null && !latestOf.has(r.id) && (i >= limits.keep || r.startedAt < now - limits.maxAgeMs),
    )
    .map((r) => r.id);
}
