import type { Transaction } from 'kysely';
import { jobIdOf } from '../domain/backup-params.js';
import { ConflictError } from '../domain/errors.js';
import {
  abandonOutdated,
  finishedState,
  managedBySp,
  MEMBER_ERRORS,
  memberError,
  memberRefusal,
  moved,
  runFinished,
  setsOf,
  startRun,
  toStart,
  type Execution,
  type MemberOutcome,
  type RunMember,
} from '../domain/job-run.js';
import { MAINTENANCE_CODE, type MaintenanceScope } from '../domain/maintenance.js';
import { quotaBinds } from '../domain/quotas.js';
import { backupTask, type NewTask } from '../domain/task-factory.js';
import { transact, type Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import { newId } from '../store/ids.js';
import {
  jobEvent,
  runMember,
  type Actor,
  type JobPatch,
  type JobRepository,
  type RunTrigger,
  type SchedulePatch,
} from '../store/job-repository.js';
import type { QuotaRepository } from '../store/quota-repository.js';
import type {
  BackupJobMemberRow,
  BackupJobRow,
  BackupJobRunRow,
  BackupJobScheduleRow,
  NewJob,
  NewJobSchedule,
  Database,
} from '../store/schema.js';
import type { TaskEndHook } from '../store/task-endings.js';
import type { TaskRepository } from '../store/task-repository.js';
import type { MaintenanceBegan, MaintenanceGate, MaintenanceNow } from './maintenance.js';

type Trx = Transaction<Database>;

/** Why a member was kept from starting: an error code of the member and its message (and the quota it is at). */
type Refusal = { code: string; message: string; quota?: string };

/** A started run, or why none started. */
export type StartOutcome = { run: BackupJobRunRow } | { refused: 'job_locked' | 'job_running' | 'job_gone' };

/** A run's members as the rules see them, with their rows (by instance). */
interface Members {
  sets: RunMember[];
  rows: Map<string, BackupJobMemberRow>;
}

/** The repositories the job-run engine moves runs with. */
export interface JobRunsDeps {
  db: Db;
  jobs: JobRepository;
  tasks: TaskRepository;
  events: EventRepository;
  quotas: QuotaRepository;
  /** Where maintenance is asked: a member it covers is refused. */
  maintenanceGate: MaintenanceGate;
}

/**
 * The job-run engine: starts a run, starts its members (their backup tasks made by the task
 * factory), moves them as their tasks end, cancels, refuses what maintenance covers, and closes
 * the run; and a job's own changes, each with its job event. Every move of a member is decided by
 * the rules of domain/job-run.ts (startRun, toStart, moved, memberError, abandonOutdated,
 * runFinished, finishedState) and written by a conditional update from the set the rule moved it
 * from, in the transaction of the change that caused it. Whoever moves a run's members first
 * takes the run's row (JobRepository.lockRun) and reads them as committed, so two ends of one run
 * at the same moment each see the other's move and one of them closes it.
 */
export class JobRuns {
  constructor(private readonly deps: JobRunsDeps) {}

  /**
   * Starts a run of `instanceIds` (in job order): claims the job's active run by a
   * compare-and-set from null (refused while the job is locked or a run goes), writes every
   * member OUTDATED, then starts what the execution lets start. A set `reset` applies to this
   * run and is cleared.
   */
  async startRun(
    jobId: string,
    input: { trigger: RunTrigger; scheduleId: string | null; instanceIds: string[] },
    actor: Actor,
    now: number,
  ): Promise<StartOutcome> {
    return transact(this.deps.db, async (trx) => {
      const runId = newId('run', now);
      const job = await this.deps.jobs.get(jobId, trx);
      if (!job) return { refused: 'job_gone' as const };
      if (!(await this.deps.jobs.claimActiveRun(trx, jobId, runId))) {
        const seen = await this.deps.jobs.get(jobId, trx);
        return { refused: seen?.locked === 1 ? ('job_locked' as const) : ('job_running' as const) };
      }
      const members = startRun(input.instanceIds);
      const run: BackupJobRunRow = {
        id: runId,
        jobId,
        tenantId: job.tenantId,
        trigger: input.trigger,
        scheduleId: input.scheduleId,
        state: 'running',
        reset: job.reset,
        cancelled: 0,
        startedAt: now,
        endedAt: null,
      };
      await this.deps.jobs.insertRun(trx, run, members);
      await this.event(
        trx,
        job,
        input.trigger === 'retry' ? 'job.retried' : 'job.run_started',
        `backup job ${job.name}: run ${runId} started (${input.trigger}, ${input.instanceIds.length} instance(s))`,
        actor,
        now,
        { runId, trigger: input.trigger, instances: input.instanceIds.length },
      );
      await this.advance(trx, runId, now);
      return { run: (await this.deps.jobs.getRun(runId, trx))! };
    });
  }

  /**
   * Cancels the job's active run: every OUTDATED member goes to ERROR at once; the tasks of the
   * ONGOING ones are answered for the caller to cancel (their ends move them to ERROR).
   */
  async cancelRun(job: BackupJobRow, actor: Actor, now: number): Promise<string[]> {
    return transact(this.deps.db, async (trx) => {
      const runId = job.activeRunId ?? '';
      if (!(await this.deps.jobs.markCancelled(trx, runId)))
        throw new ConflictError(`backup job ${job.id} has no run going`, 'job_not_running');
      const members = await this.members(trx, runId);
      await this.abandon(trx, runId, members, abandonOutdated(members.sets), {
        code: MEMBER_ERRORS.CANCELLED,
        message: 'the run was cancelled before this backup started',
      });
      await this.event(trx, job, 'job.cancelled', `backup job ${job.name}: run ${runId} cancelled`, actor, now, {
        runId,
      });
      const ongoing = setsOf(members.sets).ongoing.map((id) => members.rows.get(id)?.taskId);
      await this.advance(trx, runId, now);
      return ongoing.filter((t): t is string => Boolean(t));
    });
  }

  /**
   * Maintenance began in `scope` (in the transaction that turned it on): every OUTDATED member of
   * a run still going whose instance it covers goes to ERROR with `error` (code `maintenance`, the
   * scope's message); each run touched records it in a job event and moves on (it ends once its
   * ONGOING members end).
   */
  readonly refuseOutdated: MaintenanceBegan = async (trx, scope: MaintenanceScope, error, now) => {
    const covered = new Map<string, Set<string>>();
    for (const m of await this.deps.jobs.outdatedIn(trx, scope))
      covered.set(m.runId, (covered.get(m.runId) ?? new Set()).add(m.instanceId));
    for (const [runId, instanceIds] of covered) {
      const run = await this.deps.jobs.lockRun(trx, runId);
      if (!run || run.endedAt !== null) continue;
      const members = await this.members(trx, runId);
      const refused = await this.abandon(trx, runId, members, abandonOutdated(members.sets, instanceIds), error);
      if (refused.length === 0) continue;
      await this.refusedEvent(trx, run, refused, { code: MAINTENANCE_CODE, message: error.message }, now);
      await this.advance(trx, runId, now);
    }
  };

  /** A member's task ended: the member goes to UPDATED or ERROR and the run moves on. */
  readonly taskEnded: TaskEndHook = async (trx, task, end, now) => {
    // Only a job's backups name a job: every other task ends without a query here.
    if (jobIdOf(task) === null) return;
    const found = await this.deps.jobs.ongoingMemberOf(trx, task.id);
    if (!found) return;
    const run = await this.deps.jobs.lockRun(trx, found.runId);
    if (!run) return;
    const members = await this.members(trx, run.id);
    const member = members.rows.get(found.instanceId);
    if (member?.taskId !== task.id || member.set !== 'ONGOING') return;
    const outcome = end.state as MemberOutcome;
    const to = setOf(moved(members.sets, member.instanceId, outcome), member.instanceId);
    const error = memberError(outcome, end.error);
    const n = await this.deps.jobs.moveMembers(trx, run.id, [member.position], 'ONGOING', {
      set: to,
      errorCode: error?.code ?? null,
      errorMessage: error?.message ?? null,
    });
    if (n !== 1) return;
    await this.advance(trx, run.id, now);
  };

  // --- a job's own changes, each with its job event in the same transaction ---

  async create(job: NewJob, schedules: readonly NewJobSchedule[], actor: Actor): Promise<BackupJobRow> {
    return transact(this.deps.db, async (trx) => {
      const row = await this.deps.jobs.insert(trx, job, schedules);
      await this.event(trx, row, 'job.created', `backup job ${job.name} created`, actor, job.createdAt);
      return row;
    });
  }

  /** Changes a job that is not locked (see JobRepository.update); `type` names the event. */
  async change(id: string, patch: JobPatch, actor: Actor, type: string, now: number): Promise<BackupJobRow> {
    return transact(this.deps.db, async (trx) => {
      const job = await this.deps.jobs.update(trx, id, patch, now);
      const changed = Object.keys(patch);
      const message = `backup job ${job.name}: ${type.slice(4)} (${changed.join(', ')})`;
      await this.event(trx, job, type, message, actor, now, { changed });
      return job;
    });
  }

  /** Deletes a job with its schedules and run history; refused while it is locked or a run goes. */
  async remove(id: string, actor: Actor, now: number): Promise<void> {
    await transact(this.deps.db, async (trx) => {
      const job = await this.deps.jobs.delete(trx, id);
      await this.event(trx, job, 'job.deleted', `backup job ${job.name} deleted`, actor, now);
    });
  }

  async addSchedule(job: BackupJobRow, s: NewJobSchedule, actor: Actor): Promise<void> {
    await transact(this.deps.db, async (trx) => {
      await this.deps.jobs.addSchedule(trx, job.id, s);
      await this.scheduleEvent(trx, job, s.id, 'added', actor, s.createdAt);
    });
  }

  /** Changes a schedule; its fire times count from now again. Undefined when there is none. */
  async changeSchedule(
    job: BackupJobRow,
    sid: string,
    patch: SchedulePatch,
    actor: Actor,
    now: number,
  ): Promise<BackupJobScheduleRow | undefined> {
    return transact(this.deps.db, async (trx) => {
      const row = await this.deps.jobs.updateSchedule(trx, job.id, sid, patch, now);
      if (row) await this.scheduleEvent(trx, job, sid, 'changed', actor, now);
      return row;
    });
  }

  async removeSchedule(job: BackupJobRow, sid: string, actor: Actor, now: number): Promise<boolean> {
    return transact(this.deps.db, async (trx) => {
      const gone = await this.deps.jobs.deleteSchedule(trx, job.id, sid);
      if (gone) await this.scheduleEvent(trx, job, sid, 'deleted', actor, now);
      return gone;
    });
  }

  /** A job event of its own (a schedule's fire skipped), in the current transaction or one of its own. */
  async record(
    job: BackupJobRow,
    type: string,
    message: string,
    actor: Actor | null,
    now: number,
    data: Record<string, unknown>,
  ): Promise<void> {
    await transact(this.deps.db, (trx) => this.event(trx, job, type, message, actor, now, data));
  }

  private async scheduleEvent(
    trx: Trx,
    job: BackupJobRow,
    sid: string,
    what: 'added' | 'changed' | 'deleted',
    actor: Actor,
    now: number,
  ): Promise<void> {
    await this.event(trx, job, `job.schedule_${what}`, `backup job ${job.name}: schedule ${sid} ${what}`, actor, now, {
      scheduleId: sid,
    });
  }

  /** A job event, in the transaction of the change it tells. */
  private async event(
    trx: Trx,
    job: BackupJobRow,
    type: string,
    message: string,
    actor: Actor | null,
    now: number,
    data: Record<string, unknown> = {},
  ): Promise<void> {
    this.deps.events.append(trx, jobEvent(job, type, message, actor, now, data));
  }

  /** The run's members as committed now (after its row was taken). */
  private async members(trx: Trx, runId: string): Promise<Members> {
    const rows = await this.deps.jobs.currentMembers(trx, runId);
    return { sets: rows.map(runMember), rows: new Map(rows.map((m) => [m.instanceId, m])) };
  }

  /**
   * Writes what a rule did to OUTDATED members (`after`: the members moved to ERROR) with `error`;
   * answers the instances it moved (one that moved on meanwhile is left alone).
   */
  private async abandon(
    trx: Trx,
    runId: string,
    members: Members,
    after: readonly RunMember[],
    error: { code: string; message: string },
  ): Promise<string[]> {
    const abandoned = after.filter((m, i) => m.set !== members.sets[i]!.set);
    const moved: string[] = [];
    // One by one in job order: the answer names exactly those this transaction moved.
    for (const m of abandoned) {
      const n = await this.deps.jobs.moveMembers(trx, runId, [m.position], 'OUTDATED', {
        set: m.set,
        errorCode: error.code,
        errorMessage: error.message,
      });
      if (n === 1) moved.push(m.instanceId);
    }
    return moved;
  }

  /**
   * Starts what the run's execution lets start now (an instance whose backup cannot be made goes
   * to ERROR at once, and the next may start), and closes the run once nothing is left.
   */
  private async advance(trx: Trx, runId: string, now: number): Promise<void> {
    const run = await this.deps.jobs.lockRun(trx, runId);
    if (!run || run.endedAt !== null) return;
    const job = await this.deps.jobs.get(run.jobId, trx);
    if (!job) return;
    let members = await this.members(trx, runId);
    // Read once, when something is to start: maintenance refuses members with its message.
    let maintenance: MaintenanceNow | undefined;
    // By code and message: one event for the instances refused alike.
    const refused = new Map<string, { refusal: Refusal; instanceIds: string[] }>();
    // The members' backup tasks, written together in one insert (before anything counts tasks).
    const made = new PendingTasks(this.deps.tasks, trx, now);
    while (run.cancelled === 0) {
      const next = toStart(job.execution as Execution, members.sets);
      if (next.length === 0) break;
      maintenance ??= await this.deps.maintenanceGate.now(trx);
      let raced = false;
      for (const instanceId of next) {
        const started = await this.startMember(
          trx,
          job,
          run,
          members,
          members.rows.get(instanceId)!,
          maintenance,
          made,
        );
        if (started === 'raced') {
          raced = true;
          continue;
        }
        const refusal = started.recorded;
        if (refusal) {
          const key = `${refusal.code} ${refusal.message}`;
          const seen = refused.get(key) ?? { refusal, instanceIds: [] };
          refused.set(key, { refusal, instanceIds: [...seen.instanceIds, instanceId] });
        }
        members = { ...members, sets: moved(members.sets, instanceId, started.to) };
      }
      // A member moved by someone else meanwhile: the rules look at the run as it is now.
      if (raced) members = await this.members(trx, runId);
    }
    await made.write();
    for (const { refusal, instanceIds } of refused.values())
      await this.refusedEvent(trx, run, instanceIds, refusal, now);
    await this.close(trx, job, runId, now);
  }

  /**
   * Makes one member's backup task (→ ONGOING), or ends it in ERROR when it cannot be made, or
   * when its offering no longer allows the job to back it up (the check create made, made again
   * at every start), or when maintenance covers its instance, or when the tenant is at a quota
   * (`recorded`: the refusal a job event tells). 'raced' when the member was no longer OUTDATED.
   */
  private async startMember(
    trx: Trx,
    job: BackupJobRow,
    run: BackupJobRunRow,
    members: Members,
    member: BackupJobMemberRow,
    maintenance: MaintenanceNow,
    made: PendingTasks,
  ): Promise<{ to: 'ONGOING' | 'refused'; recorded?: Refusal } | 'raced'> {
    const now = made.now;
    // Only an OUTDATED member moves: a cancel that got it first wins.
    const claim = async (change: Parameters<JobRepository['moveMembers']>[4]) =>
      (await this.deps.jobs.moveMembers(trx, run.id, [member.position], 'OUTDATED', change)) === 1;
    const to = setOf(moved(members.sets, member.instanceId, 'refused'), member.instanceId);
    const refuse = async (refusal: Refusal, recorded: boolean) =>
      (await claim({ set: to, errorCode: refusal.code, errorMessage: refusal.message }))
        ? { to: 'refused' as const, ...(recorded ? { recorded: refusal } : {}) }
        : ('raced' as const);
    const target = await this.target(trx, job, member.instanceId);
    if ('refusal' in target) return refuse(target.refusal, false);
    const { instance, offering, provider } = target;
    const notAllowed = memberRefusal(offering, managedBySp(job.priority));
    const verdict = maintenance.admitAt('backup', {
      zone: instance.zone,
      agentId: instance.agentId,
      plugin: provider.plugin,
    });
    // The tenant's per-offering quotas bind a job of the tenant's band, not one the SP manages.
    const overQuota =
      notAllowed === null && verdict.allowed && quotaBinds(job.priority)
        ? await made.write().then(() => this.deps.quotas.backupRefusal(instance.tenantId, offering.id, trx))
        : undefined;
    const refusal: Refusal | undefined =
      notAllowed !== null
        ? { code: MEMBER_ERRORS.NOT_ALLOWED, message: `instance ${instance.id}: ${notAllowed}` }
        : !verdict.allowed
          ? { code: verdict.code, message: verdict.message }
          : overQuota
            ? { code: MEMBER_ERRORS.QUOTA_EXCEEDED, message: overQuota.message, quota: overQuota.quota }
            : undefined;
    if (refusal) return refuse(refusal, true);
    const parent =
      job.mode === 'INCREMENT' && run.reset === 0 ? await this.deps.jobs.newestBackupOf(trx, instance.id) : undefined;
    // The member is claimed before the task exists: a cancel that got it first leaves no task.
    const taskId = newId('tsk', now);
    const ongoing = setOf(moved(members.sets, member.instanceId, 'ONGOING'), member.instanceId);
    if (!(await claim({ set: ongoing, taskId }))) return 'raced';
    const extra = { fsFreeze: job.fsFreeze, jobId: job.id };
    const task = backupTask({ instance, offering, provider }, job.priority, parent, extra, taskId);
    made.add(task);
    return { to: 'ONGOING' };
  }

  /** What a member's backup is made of, or why it cannot be made. */
  private async target(trx: Trx, job: BackupJobRow, instanceId: string) {
    const { instance, offering, provider } = await this.deps.jobs.memberTarget(trx, instanceId);
    const refusal = (code: string, message: string) => ({ refusal: { code, message } });
    if (!instance || instance.tenantId !== job.tenantId)
      return refusal(MEMBER_ERRORS.NO_INSTANCE, `instance ${instanceId} no longer exists in the job's tenant`);
    if (!offering) return refusal(MEMBER_ERRORS.NO_OFFERING, `instance ${instanceId} has no backup offering`);
    if (!provider)
      return refusal(
        MEMBER_ERRORS.PROVIDER_GONE,
        `provider connection ${offering.providerId} of offering ${offering.name} no longer exists`,
      );
    return { instance, offering, provider };
  }

  /** Closes the run once nothing is left to do (runFinished), in the state finishedState gives. */
  private async close(trx: Trx, job: BackupJobRow, runId: string, now: number): Promise<void> {
    const run = await this.deps.jobs.lockRun(trx, runId);
    if (!run || run.endedAt !== null) return;
    const { sets: members } = await this.members(trx, runId);
    if (!runFinished(members)) return;
    const state = finishedState(members, run.cancelled === 1);
    if (!(await this.deps.jobs.closeRun(trx, run, state, now))) return;
    const sets = setsOf(members);
    const counts = { updated: sets.updated.length, error: sets.error.length };
    await this.event(
      trx,
      job,
      'job.run_finished',
      `backup job ${job.name}: run ${run.id} ${state} (${counts.updated} updated, ${counts.error} in error)`,
      null,
      now,
      { runId: run.id, state, ...counts, durationSeconds: Math.round((now - run.startedAt) / 1000) },
    );
  }

  /**
   * The job event of instances kept from being backed up in a run, with the code and message:
   * `job.maintenance` when maintenance covers them, `job.not_allowed` when their offering no
   * longer allows the job to back them up, `job.quota_exceeded` (with `quota`) when the tenant is
   * at a per-offering quota.
   */
  private async refusedEvent(
    trx: Trx,
    run: BackupJobRunRow,
    instanceIds: string[],
    refusal: Refusal,
    now: number,
  ): Promise<void> {
    const job = await this.deps.jobs.get(run.jobId, trx);
    if (!job) return;
    const { code, message, quota } = refusal;
    const type =
      code === MAINTENANCE_CODE
        ? 'job.maintenance'
        : code === MEMBER_ERRORS.QUOTA_EXCEEDED
          ? 'job.quota_exceeded'
          : 'job.not_allowed';
    await this.event(
      trx,
      job,
      type,
      `backup job ${job.name}: ${instanceIds.length} instance(s) of run ${run.id} not backed up: ${message}`,
      null,
      now,
      { runId: run.id, instanceIds, code, message, ...(quota !== undefined ? { quota } : {}) },
    );
  }
}

/** The set a rule left one instance in. */
function setOf(members: readonly RunMember[], instanceId: string) {
  return members.find((m) => m.instanceId === instanceId)!.set;
}

/**
 * Backup tasks a run's advance makes, written in one multi-row insert (`TaskRepository.createMany`)
 * when the advance ends, or sooner when something is about to count the tenant's tasks (a quota).
 */
class PendingTasks {
  private tasks: NewTask[] = [];

  constructor(
    private readonly repo: TaskRepository,
    private readonly trx: Trx,
    readonly now: number,
  ) {}

  add(task: NewTask): void {
    this.tasks.push(task);
  }

  async write(): Promise<void> {
    if (this.tasks.length === 0) return;
    await this.repo.createMany(this.tasks.splice(0), this.now, this.trx);
  }
}
