import { jobIdOf } from '../domain/backup-params.js';
import type { Transaction } from 'kysely';
import { backupTask } from '../domain/task-factory.js';
import { ConflictError } from '../domain/errors.js';
import { admission, MAINTENANCE_CODE, type ActiveMaintenance, type MaintenanceScope } from '../domain/maintenance.js';
import {
  finishedState,
  forgottenRuns,
  managedBySp,
  MEMBER_ERRORS,
  memberRefusal,
  setsOf,
  toStart,
  type Execution,
  type JobSet,
  type RunHistoryLimits,
  type RunMember,
} from '../domain/job-run.js';
import { transact, type Db } from './db.js';
import type { EventRepository } from './event-repository.js';
import { activeMaintenance, inScope } from './maintenance-repository.js';
import { newId } from './ids.js';
import { decodeCursor, decodeSeqCursor, pageOf, type Page, type PageRequest } from './page.js';
import type {
  BackupJobMemberRow,
  BackupJobRow,
  BackupJobRunRow,
  BackupJobScheduleRow,
  Database,
  TaskRow,
} from './schema.js';
import type { TaskEndHook } from './task-endings.js';
import type { TaskRepository } from './task-repository.js';
import type { QuotaRepository } from './quota-repository.js';
import { quotaBinds } from '../domain/quotas.js';

type Trx = Transaction<Database>;

/** Why a member was kept from starting: an error code of the member and its message (and the quota it is at). */
type Refusal = { code: string; message: string; quota?: string };

export type RunTrigger = 'run' | 'schedule' | 'retry';

/** Who did something to a job: an API token, or a schedule of the job. */
export type Actor = { tokenId: string; role: string } | { scheduleId: string };

export type JobPatch = Partial<
  Pick<
    BackupJobRow,
    'name' | 'tenantId' | 'mode' | 'reset' | 'keepLast' | 'fsFreeze' | 'priority' | 'execution' | 'locked'
  > & { instanceIds: string[] }
>;

export type SchedulePatch = Partial<Pick<BackupJobScheduleRow, 'cron' | 'timezone' | 'endAfterRuns' | 'endAt'>>;

/** Runs forgotten in one transaction (with up to 500 members each). */
export const RUN_PRUNE_BATCH = 20;

/** A started run, or why none started. */
export type StartOutcome = { run: BackupJobRunRow } | { refused: 'job_locked' | 'job_running' | 'job_gone' };

/** A member and, once it has one, its task's progress. */
export type MemberWithTask = BackupJobMemberRow & Partial<Pick<TaskRow, 'percent' | 'bytesDone' | 'bytesTotal'>>;

/**
 * Backup jobs, their schedules and their runs (the backup_job* tables). A run moves its members
 * through the four sets: the backup tasks of ONGOING members are made here through
 * TaskRepository, in the transaction that moved them, and a member's task ending (a
 * {@link TaskEndHook}) moves it on and starts what the run's execution lets start next, in the
 * transaction that ended the task.
 */
export class JobRepository {
  constructor(
    private readonly db: Db,
    private readonly tasks: TaskRepository,
    private readonly events: EventRepository,
    private readonly quotas: QuotaRepository,
  ) {}

  // --- jobs ---

  async insert(job: BackupJobRow, schedules: BackupJobScheduleRow[], actor: Actor): Promise<void> {
    await transact(this.db, async (trx) => {
      await trx.insertInto('backupJobs').values(job).execute();
      for (const s of schedules) await trx.insertInto('backupJobSchedules').values(s).execute();
      await this.event(trx, job, 'job.created', `backup job ${job.name} created`, actor, job.createdAt);
    });
  }

  async get(id: string, db: Db | Trx = this.db): Promise<BackupJobRow | undefined> {
    return db.selectFrom('backupJobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Oldest first. */
  async list(page: PageRequest, tenantId: string | undefined): Promise<Page<BackupJobRow>> {
    const after = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('backupJobs')
      .selectAll()
      .orderBy('id')
      .limit(page.limit + 1);
    if (after) q = q.where('id', '>', after);
    if (tenantId !== undefined) q = q.where('tenantId', '=', tenantId);
    return pageOf(await q.execute(), page.limit);
  }

  /**
   * Changes a job that is not locked (a lock or unlock changes only `locked`, and is allowed
   * either way). The lock is part of the update's condition, so a change racing a lock cannot slip in.
   */
  async update(id: string, patch: JobPatch, actor: Actor, type: string, now: number): Promise<BackupJobRow> {
    return transact(this.db, async (trx) => {
      const { instanceIds, ...rest } = patch;
      const lockOnly = Object.keys(patch).length === 1 && patch.locked !== undefined;
      let q = trx
        .updateTable('backupJobs')
        .set({ ...rest, ...(instanceIds ? { instanceIds: JSON.stringify(instanceIds) } : {}), updatedAt: now })
        .where('id', '=', id);
      if (!lockOnly) q = q.where('locked', '=', 0);
      const r = await q.executeTakeFirst();
      const job = await this.get(id, trx);
      if (!job) throw new ConflictError(`backup job ${id} was deleted meanwhile`, 'job_gone');
      if (Number(r.numUpdatedRows) !== 1) throw lockedError(id);
      const changed = Object.keys(patch).join(', ');
      await this.event(trx, job, type, `backup job ${job.name}: ${type.slice(4)} (${changed})`, actor, now, {
        changed: Object.keys(patch),
      });
      return job;
    });
  }

  /** Deletes a job with its schedules and run history; refused while it is locked or a run goes. */
  async delete(id: string, actor: Actor, now: number): Promise<void> {
    await transact(this.db, async (trx) => {
      const job = await this.get(id, trx);
      if (!job) throw new ConflictError(`backup job ${id} was deleted meanwhile`, 'job_gone');
      const r = await trx
        .deleteFrom('backupJobs')
        .where('id', '=', id)
        .where('activeRunId', 'is', null)
        .where('locked', '=', 0)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) {
        if (job.locked === 1) throw lockedError(id);
        throw runningError(id, job.activeRunId);
      }
      await trx.deleteFrom('backupJobMembers').where('jobId', '=', id).execute();
      await trx.deleteFrom('backupJobRuns').where('jobId', '=', id).execute();
      await trx.deleteFrom('backupJobSchedules').where('jobId', '=', id).execute();
      await this.event(trx, job, 'job.deleted', `backup job ${job.name} deleted`, actor, now);
    });
  }

  // --- schedules ---

  async schedulesOf(jobId: string): Promise<BackupJobScheduleRow[]> {
    return this.db.selectFrom('backupJobSchedules').selectAll().where('jobId', '=', jobId).orderBy('id').execute();
  }

  async addSchedule(job: BackupJobRow, s: BackupJobScheduleRow, actor: Actor): Promise<void> {
    await transact(this.db, async (trx) => {
      await this.assertUnlocked(trx, job.id);
      await trx.insertInto('backupJobSchedules').values(s).execute();
      await this.event(
        trx,
        job,
        'job.schedule_added',
        `backup job ${job.name}: schedule ${s.id} added`,
        actor,
        s.createdAt,
        {
          scheduleId: s.id,
        },
      );
    });
  }

  /** Changes a schedule; its fire times count from now again. Undefined when there is none. */
  async updateSchedule(
    job: BackupJobRow,
    sid: string,
    patch: SchedulePatch,
    actor: Actor,
    now: number,
  ): Promise<BackupJobScheduleRow | undefined> {
    return transact(this.db, async (trx) => {
      await this.assertUnlocked(trx, job.id);
      const r = await trx
        .updateTable('backupJobSchedules')
        // Its next fire time is computed afresh by the next scheduler tick.
        .set({ ...patch, updatedAt: now, nextFireAt: null })
        .where('id', '=', sid)
        .where('jobId', '=', job.id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return undefined;
      await this.event(
        trx,
        job,
        'job.schedule_changed',
        `backup job ${job.name}: schedule ${sid} changed`,
        actor,
        now,
        {
          scheduleId: sid,
        },
      );
      return trx.selectFrom('backupJobSchedules').selectAll().where('id', '=', sid).executeTakeFirst();
    });
  }

  async deleteSchedule(job: BackupJobRow, sid: string, actor: Actor, now: number): Promise<boolean> {
    return transact(this.db, async (trx) => {
      await this.assertUnlocked(trx, job.id);
      const r = await trx
        .deleteFrom('backupJobSchedules')
        .where('id', '=', sid)
        .where('jobId', '=', job.id)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) return false;
      await this.event(
        trx,
        job,
        'job.schedule_deleted',
        `backup job ${job.name}: schedule ${sid} deleted`,
        actor,
        now,
        {
          scheduleId: sid,
        },
      );
      return true;
    });
  }

  // --- runs ---

  async getRun(id: string, db: Db | Trx = this.db): Promise<BackupJobRunRow | undefined> {
    return db.selectFrom('backupJobRuns').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Newest first. */
  async runs(jobId: string, page: PageRequest): Promise<Page<BackupJobRunRow>> {
    const before = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('backupJobRuns')
      .selectAll()
      .where('jobId', '=', jobId)
      .orderBy('id', 'desc')
      .limit(page.limit + 1);
    if (before) q = q.where('id', '<', before);
    return pageOf(await q.execute(), page.limit);
  }

  /** The members of these runs in job order (only the first `firstN` of each when given), with their tasks' progress. */
  async membersOf(runIds: string[], firstN?: number): Promise<MemberWithTask[]> {
    if (runIds.length === 0) return [];
    let q = this.db
      .selectFrom('backupJobMembers')
      .leftJoin('tasks', 'tasks.id', 'backupJobMembers.taskId')
      .selectAll('backupJobMembers')
      .select(['tasks.percent', 'tasks.bytesDone', 'tasks.bytesTotal'])
      .where('backupJobMembers.runId', 'in', runIds);
    if (firstN !== undefined) q = q.where('backupJobMembers.position', '<', firstN);
    return q.orderBy('backupJobMembers.runId').orderBy('backupJobMembers.position').execute() as Promise<
      MemberWithTask[]
    >;
  }

  /** A page of one run's members in job order (the cursor: the last position seen). */
  async memberPage(runId: string, page: PageRequest): Promise<Page<MemberWithTask & { id: number }>> {
    const after = decodeSeqCursor(page.cursor);
    let q = this.db
      .selectFrom('backupJobMembers')
      .leftJoin('tasks', 'tasks.id', 'backupJobMembers.taskId')
      .selectAll('backupJobMembers')
      .select(['tasks.percent', 'tasks.bytesDone', 'tasks.bytesTotal'])
      .where('backupJobMembers.runId', '=', runId)
      .orderBy('backupJobMembers.position')
      .limit(page.limit + 1);
    if (after !== undefined) q = q.where('backupJobMembers.position', '>', after);
    const rows = (await q.execute()) as MemberWithTask[];
    return pageOf(
      rows.map((m) => ({ ...m, id: m.position })),
      page.limit,
    );
  }

  /** How many members of each of these runs are in each set. */
  async memberCounts(runIds: string[]): Promise<Map<string, Record<JobSet, number>>> {
    const counts = new Map<string, Record<JobSet, number>>();
    if (runIds.length === 0) return counts;
    const rows = await this.db
      .selectFrom('backupJobMembers')
      .select((eb) => ['runId', 'set', eb.fn.countAll<number | string>().as('n')])
      .where('runId', 'in', runIds)
      .groupBy(['runId', 'set'])
      .execute();
    for (const r of rows) {
      const c = counts.get(r.runId) ?? { OUTDATED: 0, ONGOING: 0, UPDATED: 0, ERROR: 0 };
      c[r.set as JobSet] = Number(r.n);
      counts.set(r.runId, c);
    }
    return counts;
  }

  // --- run history ---

  /** Jobs that have run, by id after `after` (the history sweep's walk). */
  async jobsThatRan(after: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('backupJobs')
      .select('id')
      .where('lastRunId', 'is not', null)
      .where('id', '>', after)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /**
   * Forgets up to {@link RUN_PRUNE_BATCH} runs of a job past its history limits (see
   * forgottenRuns), members first, in one transaction; answers how many. Only finished runs go,
   * and a finished run changes no more, so a run starting or ending meanwhile is never touched.
   */
  async forgetRuns(jobId: string, limits: RunHistoryLimits, now: number): Promise<number> {
    // The latest run of each instance stays: the job's sets are read from it.
    const latest = await this.db
      .selectFrom('backupJobMembers')
      .select((eb) => eb.fn.max('runId').as('runId'))
      .where('jobId', '=', jobId)
      .groupBy('instanceId')
      .execute();
    const latestOf = new Set(latest.map((r) => r.runId));
    const newestFirst = await this.db
      .selectFrom('backupJobRuns')
      .select(['id', 'startedAt', 'endedAt'])
      .where('jobId', '=', jobId)
      .orderBy('id', 'desc')
      .limit(limits.keep + latestOf.size + RUN_PRUNE_BATCH)
      .execute();
    const ids = forgottenRuns(newestFirst, latestOf, limits, now).slice(0, RUN_PRUNE_BATCH);
    if (ids.length === 0) return 0;
    return transact(this.db, async (trx) => {
      await trx.deleteFrom('backupJobMembers').where('runId', 'in', ids).execute();
      const r = await trx
        .deleteFrom('backupJobRuns')
        .where('id', 'in', ids)
        .where('endedAt', 'is not', null)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }

  /** Each instance's set as its latest run left it (instances never run are absent). */
  async latestSets(jobId: string): Promise<Map<string, JobSet>> {
    const rows = await this.db
      .selectFrom('backupJobMembers as m')
      .select(['m.instanceId', 'm.set'])
      .where('m.jobId', '=', jobId)
      .where('m.runId', '=', (eb) =>
        eb
          .selectFrom('backupJobMembers as l')
          .select((e) => e.fn.max('l.runId').as('latest'))
          .where('l.jobId', '=', jobId)
          .whereRef('l.instanceId', '=', 'm.instanceId'),
      )
      .execute();
    return new Map(rows.map((r) => [r.instanceId, r.set as JobSet]));
  }

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
    return transact(this.db, async (trx) => {
      const runId = newId('run', now);
      const job = await this.get(jobId, trx);
      if (!job) return { refused: 'job_gone' as const };
      const r = await trx
        .updateTable('backupJobs')
        .set({ activeRunId: runId, lastRunId: runId, reset: 0 })
        .where('id', '=', jobId)
        .where('activeRunId', 'is', null)
        .where('locked', '=', 0)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) {
        const now2 = await this.get(jobId, trx);
        return { refused: now2?.locked === 1 ? ('job_locked' as const) : ('job_running' as const) };
      }
      const run: BackupJobRunRow = {
        id: runId,
        jobId,
        tenantId: job.tenantId,
        trigger: input.trigger,
        scheduleId: input.scheduleId,
        state: 'running',
        reset: job.reset,
        cancelled: 0,
        outstanding: input.instanceIds.length,
        startedAt: now,
        endedAt: null,
      };
      await trx.insertInto('backupJobRuns').values(run).execute();
      await trx
        .insertInto('backupJobMembers')
        .values(
          input.instanceIds.map((instanceId, position) => ({
            runId,
            position,
            jobId,
            instanceId,
            set: 'OUTDATED',
            taskId: null,
            errorCode: null,
            errorMessage: null,
          })),
        )
        .execute();
      if (input.scheduleId) {
        await trx
          .updateTable('backupJobSchedules')
          .set((eb) => ({ runs: eb('runs', '+', 1) }))
          .where('id', '=', input.scheduleId)
          .execute();
      }
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
      return { run: (await this.getRun(runId, trx))! };
    });
  }

  /**
   * Cancels the job's active run: every OUTDATED member goes to ERROR at once; the tasks of the
   * ONGOING ones are answered for the caller to cancel (their ends move them to ERROR).
   */
  async cancelRun(job: BackupJobRow, actor: Actor, now: number): Promise<string[]> {
    return transact(this.db, async (trx) => {
      const r = await trx
        .updateTable('backupJobRuns')
        .set({ cancelled: 1 })
        .where('id', '=', job.activeRunId ?? '')
        .where('endedAt', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1)
        throw new ConflictError(`backup job ${job.id} has no run going`, 'job_not_running');
      const runId = job.activeRunId!;
      const abandoned = await trx
        .updateTable('backupJobMembers')
        .set({
          set: 'ERROR',
          errorCode: MEMBER_ERRORS.CANCELLED,
          errorMessage: 'the run was cancelled before this backup started',
        })
        .where('runId', '=', runId)
        .where('set', '=', 'OUTDATED')
        .executeTakeFirst();
      await this.countEnded(trx, runId, Number(abandoned.numUpdatedRows));
      await this.event(trx, job, 'job.cancelled', `backup job ${job.name}: run ${runId} cancelled`, actor, now, {
        runId,
      });
      const ongoing = await trx
        .selectFrom('backupJobMembers')
        .select('taskId')
        .where('runId', '=', runId)
        .where('set', '=', 'ONGOING')
        .orderBy('position')
        .execute();
      await this.advance(trx, runId, now);
      return ongoing.map((m) => m.taskId!).filter(Boolean);
    });
  }

  /**
   * Maintenance began in `scope`: every OUTDATED member of a run still going whose instance it
   * covers goes to ERROR with `error` (code `maintenance`, the scope's message); each run touched
   * records it in a job event and moves on (it ends once its ONGOING members end).
   */
  async refuseOutdated(
    trx: Trx,
    scope: MaintenanceScope,
    error: { code: string; message: string },
    now: number,
  ): Promise<void> {
    const members = await trx
      .selectFrom('backupJobMembers')
      .innerJoin('backupJobRuns', 'backupJobRuns.id', 'backupJobMembers.runId')
      .innerJoin('instances', 'instances.id', 'backupJobMembers.instanceId')
      .select(['backupJobMembers.runId', 'backupJobMembers.position', 'backupJobMembers.instanceId'])
      .where('backupJobRuns.endedAt', 'is', null)
      .where('backupJobMembers.set', '=', 'OUTDATED')
      .where(inScope(scope, 'instances.zone', 'instances.agentId'))
      .orderBy('backupJobMembers.runId')
      .orderBy('backupJobMembers.position')
      .execute();
    const byRun = new Map<string, string[]>();
    for (const m of members) {
      const r = await trx
        .updateTable('backupJobMembers')
        .set({ set: 'ERROR', errorCode: error.code, errorMessage: error.message })
        .where('runId', '=', m.runId)
        .where('position', '=', m.position)
        .where('set', '=', 'OUTDATED')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) continue;
      byRun.set(m.runId, [...(byRun.get(m.runId) ?? []), m.instanceId]);
    }
    for (const [runId, instanceIds] of byRun) {
      await this.countEnded(trx, runId, instanceIds.length);
      await this.refusedEvent(trx, runId, instanceIds, { code: MAINTENANCE_CODE, message: error.message }, now);
      await this.advance(trx, runId, now);
    }
  }

  /**
   * The job event of instances kept from being backed up in a run, with the code and message:
   * `job.maintenance` when maintenance covers them, `job.not_allowed` when their offering no
   * longer allows the job to back them up, `job.quota_exceeded` (with `quota`) when the tenant is
   * at a per-offering quota.
   */
  private async refusedEvent(trx: Trx, runId: string, instanceIds: string[], refusal: Refusal, now: number) {
    const run = await this.getRun(runId, trx);
    const job = run ? await this.get(run.jobId, trx) : undefined;
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
      `backup job ${job.name}: ${instanceIds.length} instance(s) of run ${runId} not backed up: ${message}`,
      null,
      now,
      { runId, instanceIds, code, message, ...(quota !== undefined ? { quota } : {}) },
    );
  }

  /** A member's task ended: the member goes to UPDATED or ERROR and the run moves on. */
  readonly taskEnded: TaskEndHook = async (trx, task, end, now) => {
    // Only a job's backups name a job: every other task ends without a query here.
    if (jobIdOf(task) === null) return;
    const member = await trx
      .selectFrom('backupJobMembers')
      .selectAll()
      .where('taskId', '=', task.id)
      .where('set', '=', 'ONGOING')
      .executeTakeFirst();
    if (!member) return;
    const ok = end.state === 'succeeded';
    const r = await trx
      .updateTable('backupJobMembers')
      .set({
        set: ok ? 'UPDATED' : 'ERROR',
        errorCode: ok ? null : (end.error?.code ?? end.state.toUpperCase()),
        errorMessage: ok ? null : (end.error?.message ?? `the backup task ended ${end.state}`),
      })
      .where('runId', '=', member.runId)
      .where('position', '=', member.position)
      .where('set', '=', 'ONGOING')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return;
    await this.countEnded(trx, member.runId, 1);
    await this.advance(trx, member.runId, now);
  };

  /** The keep-last of the job whose run made this backup task, when the job sets one. */
  async keepLastOf(trx: Trx, task: TaskRow): Promise<number | null> {
    if (jobIdOf(task) === null) return null;
    const taskId = task.id;
    const row = await trx
      .selectFrom('backupJobMembers')
      .innerJoin('backupJobs', 'backupJobs.id', 'backupJobMembers.jobId')
      .select('backupJobs.keepLast')
      .where('backupJobMembers.taskId', '=', taskId)
      .executeTakeFirst();
    return row?.keepLast ?? null;
  }

  private async countEnded(trx: Trx, runId: string, n: number): Promise<void> {
    if (n === 0) return;
    await trx
      .updateTable('backupJobRuns')
      .set((eb) => ({ outstanding: eb('outstanding', '-', n) }))
      .where('id', '=', runId)
      .execute();
  }

  /**
   * Starts what the run's execution lets start now (an instance whose backup cannot be made goes
   * to ERROR at once, and the next may start), and closes the run once nothing is left.
   */
  private async advance(trx: Trx, runId: string, now: number): Promise<void> {
    const run = await this.getRun(runId, trx);
    if (!run || run.endedAt !== null) return;
    const job = await this.get(run.jobId, trx);
    if (!job) return;
    const rows = await trx
      .selectFrom('backupJobMembers')
      .selectAll()
      .where('runId', '=', runId)
      .orderBy('position')
      .execute();
    let members: RunMember[] = rows.map((m) => ({
      instanceId: m.instanceId,
      position: m.position,
      set: m.set as JobSet,
    }));
    const byInstance = new Map(rows.map((m) => [m.instanceId, m]));
    // Read once, when something is to start: maintenance refuses members with its message.
    let active: ActiveMaintenance | undefined;
    // By code and message: one event for the instances refused alike.
    const refused = new Map<string, { refusal: Refusal; instanceIds: string[] }>();
    while (run.cancelled === 0) {
      const next = toStart(job.execution as Execution, members);
      if (next.length === 0) break;
      active ??= await activeMaintenance(trx);
      for (const instanceId of next) {
        const started = await this.startMember(trx, job, run, byInstance.get(instanceId)!, active, now);
        const refusal = started.refusedWith;
        if (refusal !== undefined) {
          const key = `${refusal.code} ${refusal.message}`;
          const seen = refused.get(key) ?? { refusal, instanceIds: [] };
          refused.set(key, { refusal, instanceIds: [...seen.instanceIds, instanceId] });
        }
        members = members.map((m) => (m.instanceId === instanceId ? { ...m, set: started.set } : m));
      }
    }
    for (const { refusal, instanceIds } of refused.values())
      await this.refusedEvent(trx, runId, instanceIds, refusal, now);
    const fresh = await this.getRun(runId, trx);
    if (!fresh || fresh.outstanding > 0) return;
    await this.close(trx, job, fresh, now);
  }

  /**
   * Makes one member's backup task (→ ONGOING), or ends it in ERROR when it cannot be made, or
   * when its offering no longer allows the job to back it up (the check create made, made again
   * at every start), or when maintenance covers its instance (`refusedWith`: code and message).
   */
  private async startMember(
    trx: Trx,
    job: BackupJobRow,
    run: BackupJobRunRow,
    member: BackupJobMemberRow,
    active: ActiveMaintenance,
    now: number,
  ): Promise<{ set: JobSet; refusedWith?: Refusal }> {
    // Only an OUTDATED member moves: a cancel that got it first wins.
    const claim = (change: Partial<BackupJobMemberRow>) =>
      trx
        .updateTable('backupJobMembers')
        .set(change)
        .where('runId', '=', run.id)
        .where('position', '=', member.position)
        .where('set', '=', 'OUTDATED')
        .executeTakeFirst();
    const refuse = async (code: string | undefined, message: string | undefined) => {
      const r = await claim({ set: 'ERROR', errorCode: code ?? null, errorMessage: message ?? null });
      if (Number(r.numUpdatedRows) === 1) await this.countEnded(trx, run.id, 1);
      return Number(r.numUpdatedRows) === 1;
    };
    const target = await this.target(trx, job, member.instanceId);
    if ('error' in target) {
      await refuse(target.error, target.message);
      return { set: 'ERROR' };
    }
    const { instance, offering, provider } = target;
    const notAllowed = memberRefusal(offering, managedBySp(job.priority));
    const verdict = admission('backup', active, {
      zone: instance.zone,
      agentId: instance.agentId,
      plugin: provider.plugin,
    });
    // The tenant's per-offering quotas bind a job of the tenant's band, not one the SP manages.
    const overQuota =
      notAllowed === null && verdict.allowed && quotaBinds(job.priority)
        ? await this.quotas.backupRefusal(instance.tenantId, offering.id, trx)
        : undefined;
    const refusal: Refusal | undefined =
      notAllowed !== null
        ? { code: MEMBER_ERRORS.NOT_ALLOWED, message: `instance ${instance.id}: ${notAllowed}` }
        : !verdict.allowed
          ? { code: verdict.code, message: verdict.message }
          : overQuota
            ? { code: MEMBER_ERRORS.QUOTA_EXCEEDED, message: overQuota.message, quota: overQuota.quota }
            : undefined;
    if (refusal) {
      return (await refuse(refusal.code, refusal.message)) ? { set: 'ERROR', refusedWith: refusal } : { set: 'ERROR' };
    }
    const parent =
      job.mode === 'INCREMENT' && run.reset === 0
        ? await trx
            .selectFrom('backups')
            .select('externalId')
            .where('instanceId', '=', instance.id)
            .orderBy('id', 'desc')
            .executeTakeFirst()
        : undefined;
    // The member is claimed before the task exists: a cancel that got it first leaves no task.
    const taskId = newId('tsk', now);
    const r = await claim({ set: 'ONGOING', taskId });
    if (Number(r.numUpdatedRows) !== 1) return { set: 'ERROR' };
    const extra = { fsFreeze: job.fsFreeze, jobId: job.id };
    const task = backupTask({ instance, offering, provider }, job.priority, parent, extra, taskId);
    await this.tasks.create(task, now, trx);
    return { set: 'ONGOING' };
  }

  private async target(trx: Trx, job: BackupJobRow, instanceId: string) {
    const instance = await trx.selectFrom('instances').selectAll().where('id', '=', instanceId).executeTakeFirst();
    if (!instance || instance.tenantId !== job.tenantId)
      return {
        error: MEMBER_ERRORS.NO_INSTANCE,
        message: `instance ${instanceId} no longer exists in the job's tenant`,
      };
    const offering = instance.offeringId
      ? await trx.selectFrom('offerings').selectAll().where('id', '=', instance.offeringId).executeTakeFirst()
      : undefined;
    if (!offering)
      return { error: MEMBER_ERRORS.NO_OFFERING, message: `instance ${instanceId} has no backup offering` };
    const provider = await trx
      .selectFrom('providers')
      .selectAll()
      .where('id', '=', offering.providerId)
      .executeTakeFirst();
    if (!provider)
      return {
        error: MEMBER_ERRORS.PROVIDER_GONE,
        message: `provider connection ${offering.providerId} of offering ${offering.name} no longer exists`,
      };
    return { instance, offering, provider };
  }

  private async close(trx: Trx, job: BackupJobRow, run: BackupJobRunRow, now: number): Promise<void> {
    const rows = await trx.selectFrom('backupJobMembers').selectAll().where('runId', '=', run.id).execute();
    const members = rows.map((m) => ({ instanceId: m.instanceId, position: m.position, set: m.set as JobSet }));
    const state = finishedState(members, run.cancelled === 1);
    const r = await trx
      .updateTable('backupJobRuns')
      .set({ state, endedAt: now })
      .where('id', '=', run.id)
      .where('endedAt', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return;
    await trx
      .updateTable('backupJobs')
      .set({ activeRunId: null })
      .where('id', '=', job.id)
      .where('activeRunId', '=', run.id)
      .execute();
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

  private async assertUnlocked(trx: Trx, jobId: string): Promise<void> {
    const job = await this.get(jobId, trx);
    if (!job) throw new ConflictError(`backup job ${jobId} was deleted meanwhile`, 'job_gone');
    if (job.locked === 1) throw lockedError(jobId);
  }

  /** A job event, with who did it (null: the run itself) and when. */
  async event(
    trx: Trx | undefined,
    job: BackupJobRow,
    type: string,
    message: string,
    actor: Actor | null,
    now: number,
    data: Record<string, unknown> = {},
  ): Promise<void> {
    const write = (t: Trx) =>
      this.events.append(t, {
        tenantId: job.tenantId,
        type,
        at: now,
        message,
        taskId: null,
        instanceId: null,
        jobId: job.id,
        agentId: null,
        data: JSON.stringify({ ...data, ...(actor ? { by: actor } : {}) }),
        sourceAgentId: null,
        sourceSeq: null,
      });
    await (trx ? write(trx) : transact(this.db, write));
  }
}

export const lockedError = (id: string) =>
  new ConflictError(`backup job ${id} is locked: unlock it first`, 'job_locked');
export const runningError = (id: string, runId: string | null) =>
  new ConflictError(`backup job ${id} has a run going (${runId ?? '?'})`, 'job_running');
