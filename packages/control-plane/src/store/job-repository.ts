import { sql, type Insertable, type Transaction } from 'kysely';
import { jobIdOf } from '../domain/backup-params.js';
import { ConflictError } from '../domain/errors.js';
import type { MaintenanceScope } from '../domain/maintenance.js';
import { forgottenRuns, type JobSet, type RunHistoryLimits, type RunMember, type RunState } from '../domain/job-run.js';
import { catalogChain, type CatalogChain } from './catalog-rows.js';
import { transact, type Db } from './db.js';
import { current, isMysql, throughIndex } from './dialect.js';
import { inScope } from './maintenance-scopes.js';
import { moveCount } from './tenant-counts.js';
import { decodeCursor, decodeSeqCursor, pageOf, searchedList, type Page, type PageRequest } from './page.js';
import type {
  BackupJobMemberRow,
  BackupJobRow,
  BackupJobRunRow,
  BackupJobScheduleRow,
  Database,
  NewJob,
  NewJobSchedule,
  EventRow,
  TaskRow,
} from './schema.js';

type Trx = Transaction<Database>;

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

/** A member and, once it has one, its task's progress. */
export type MemberWithTask = BackupJobMemberRow & Partial<Pick<TaskRow, 'percent' | 'bytesDone' | 'bytesTotal'>>;

/**
 * Backup jobs, their schedules and their runs (the backup_job* tables): rows only. The job
 * engine in lifecycle/job-runs.ts moves a run's members through the four sets by the rules of
 * domain/job-run.ts, with the reads and conditional updates here.
 */
export class JobRepository {
  constructor(private readonly db: Db) {}

  // --- jobs ---

  /**
   * Writes a new job with its schedules (its schedules and members counted on its row), and counts
   * it for its tenant. Answers the row as written.
   */
  async insert(trx: Trx, job: NewJob, schedules: readonly NewJobSchedule[]): Promise<BackupJobRow> {
    const row: BackupJobRow = {
      ...job,
      scheduleCount: schedules.length,
      memberCount: (JSON.parse(job.instanceIds) as unknown[]).length,
    };
    await trx.insertInto('backupJobs').values(row).execute();
    for (const s of schedules)
      await trx
        .insertInto('backupJobSchedules')
        .values({ ...s, tenantId: job.tenantId })
        .execute();
    await moveCount(trx, job.tenantId, 'jobs', 1);
    return row;
  }

  async get(id: string, db: Db | Trx = this.db): Promise<BackupJobRow | undefined> {
    return db.selectFrom('backupJobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Oldest first. `search`: see {@link nameOrId}. */
  async list(page: PageRequest, tenantId: string | undefined, search?: string): Promise<Page<BackupJobRow>> {
    return searchedList<BackupJobRow>(this.db, 'backupJobs', page, tenantId, search);
  }

  /**
   * Changes a job that is not locked (a lock or unlock changes only `locked`, and is allowed
   * either way), and answers it changed. The lock is part of the update's condition, so a change
   * racing a lock cannot slip in.
   */
  async update(trx: Trx, id: string, patch: JobPatch, now: number): Promise<BackupJobRow> {
    const { instanceIds, ...rest } = patch;
    const lockOnly = Object.keys(patch).length === 1 && patch.locked !== undefined;
    // A job given to another tenant moves from one tenant's count to the other's: its tenant as
    // committed now, not as this transaction's snapshot may have it.
    const from =
      patch.tenantId === undefined
        ? undefined
        : (await current(trx, trx.selectFrom('backupJobs').select('tenantId').where('id', '=', id)).executeTakeFirst())
            ?.tenantId;
    let q = trx
      .updateTable('backupJobs')
      .set({
        ...rest,
        ...(instanceIds ? { instanceIds: JSON.stringify(instanceIds), memberCount: instanceIds.length } : {}),
        updatedAt: now,
      })
      .where('id', '=', id);
    if (!lockOnly) q = q.where('locked', '=', 0);
    const r = await q.executeTakeFirst();
    const job = await this.get(id, trx);
    if (!job) throw goneError(id);
    if (Number(r.numUpdatedRows) !== 1) throw lockedError(id);
    if (from !== undefined && from !== job.tenantId) {
      // The two tenants' rows in id order, so two such moves lock them alike.
      const moves: [string, number][] = [
        [from, -1],
        [job.tenantId, 1],
      ];
      if (job.tenantId < from) moves.reverse();
      for (const [tenantId, delta] of moves) await moveCount(trx, tenantId, 'jobs', delta);
      // Its schedules go with it (each carries its job's tenant).
      await trx.updateTable('backupJobSchedules').set({ tenantId: job.tenantId }).where('jobId', '=', id).execute();
    }
    return job;
  }

  /**
   * Deletes a job with its schedules and run history, and answers it; refused while it is locked
   * or a run goes.
   */
  async delete(trx: Trx, id: string): Promise<BackupJobRow> {
    // Its tenant as committed now (whose count it leaves), not as this transaction's snapshot may have it.
    const job = await current(trx, trx.selectFrom('backupJobs').selectAll().where('id', '=', id)).executeTakeFirst();
    if (!job) throw goneError(id);
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
    await moveCount(trx, job.tenantId, 'jobs', -1);
    return job;
  }

  // --- schedules ---

  async schedulesOf(jobId: string): Promise<BackupJobScheduleRow[]> {
    return this.db.selectFrom('backupJobSchedules').selectAll().where('jobId', '=', jobId).orderBy('id').execute();
  }

  /** Adds a schedule to a job that is not locked. */
  async addSchedule(trx: Trx, jobId: string, s: NewJobSchedule): Promise<void> {
    const job = await this.assertUnlocked(trx, jobId);
    await trx
      .insertInto('backupJobSchedules')
      .values({ ...s, tenantId: job.tenantId })
      .execute();
    await this.moveScheduleCount(trx, jobId, 1);
  }

  /** Moves the job's count of its schedules (what the schedulesPerJob quota reads). */
  private async moveScheduleCount(trx: Trx, jobId: string, delta: number): Promise<void> {
    await trx
      .updateTable('backupJobs')
      .set({ scheduleCount: sql<number>`schedule_count + ${delta}` })
      .where('id', '=', jobId)
      .execute();
  }

  /**
   * Changes a schedule of a job that is not locked; its fire times count from now again.
   * Undefined when there is none.
   */
  async updateSchedule(
    trx: Trx,
    jobId: string,
    sid: string,
    patch: SchedulePatch,
    now: number,
  ): Promise<BackupJobScheduleRow | undefined> {
    await this.assertUnlocked(trx, jobId);
    const r = await trx
      .updateTable('backupJobSchedules')
      // Its next fire time is computed afresh by the next scheduler tick.
      .set({ ...patch, updatedAt: now, nextFireAt: null })
      .where('id', '=', sid)
      .where('jobId', '=', jobId)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return undefined;
    return trx.selectFrom('backupJobSchedules').selectAll().where('id', '=', sid).executeTakeFirst();
  }

  /** Deletes a schedule of a job that is not locked; false when there is none. */
  async deleteSchedule(trx: Trx, jobId: string, sid: string): Promise<boolean> {
    await this.assertUnlocked(trx, jobId);
    const r = await trx
      .deleteFrom('backupJobSchedules')
      .where('id', '=', sid)
      .where('jobId', '=', jobId)
      .executeTakeFirst();
    if (Number(r.numDeletedRows) !== 1) return false;
    await this.moveScheduleCount(trx, jobId, -1);
    return true;
  }

  // --- runs ---

  async getRun(id: string, db: Db | Trx = this.db): Promise<BackupJobRunRow | undefined> {
    return db.selectFrom('backupJobRuns').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Newest first. */
  async runs(jobId: string, page: PageRequest): Promise<Page<BackupJobRunRow>> {
    const before = decodeCursor(page.cursor);
    let q = throughIndex(this.db, this.db.selectFrom('backupJobRuns'), 'backup_job_runs', 'backup_job_runs_job')
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

  /** The set each of `instanceIds` was left in by its latest run of the job (those never run in it are absent). */
  async latestSets(jobId: string, instanceIds: readonly string[]): Promise<Map<string, JobSet>> {
    if (instanceIds.length === 0) return new Map();
    // Each instance's newest member row, found from the end of its range of the (job, instance,
    // run) index: never every run the history keeps (100 runs of 500 members took 28 ms on SQLite
    // and 1.5 s on MariaDB read whole). The ids come as one JSON list, made a table by the store.
    const ids = isMysql(this.db)
      ? sql`json_table(${JSON.stringify(instanceIds)}, '$[*]' columns (id varchar(64) path '$')) i`
      : sql`(select value as id from json_each(${JSON.stringify(instanceIds)})) i`;
    const { rows } = await sql<{ instanceId: string; set: string | null }>`
      select i.id as instance_id,
        (select m.${sql.ref('set')} from backup_job_members m
          where m.job_id = ${jobId} and m.instance_id = i.id
          order by m.run_id desc limit 1) as ${sql.ref('set')}
      from ${ids}`.execute(this.db);
    const out = new Map<string, JobSet>();
    for (const r of rows) if (r.set !== null) out.set(r.instanceId, r.set as JobSet);
    return out;
  }

  // --- run rows: lifecycle/job-runs.ts moves them, by the rules of domain/job-run.ts ---

  /**
   * Claims the job's active run for `runId` by a compare-and-set from null (refused while the job
   * is locked or a run goes) and clears a set `reset` (it applies to this run).
   */
  async claimActiveRun(trx: Trx, jobId: string, runId: string): Promise<boolean> {
    const r = await trx
      .updateTable('backupJobs')
      .set({ activeRunId: runId, lastRunId: runId, reset: 0 })
      .where('id', '=', jobId)
      .where('activeRunId', 'is', null)
      .where('locked', '=', 0)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Writes a run and its members (a schedule's run is counted on the schedule). */
  async insertRun(trx: Trx, run: BackupJobRunRow, members: readonly RunMember[]): Promise<void> {
    await trx.insertInto('backupJobRuns').values(run).execute();
    if (members.length > 0) {
      await trx
        .insertInto('backupJobMembers')
        .values(
          members.map((m) => ({
            runId: run.id,
            position: m.position,
            jobId: run.jobId,
            instanceId: m.instanceId,
            set: m.set,
            taskId: null,
            errorCode: null,
            errorMessage: null,
          })),
        )
        .execute();
    }
    if (run.scheduleId) {
      await trx
        .updateTable('backupJobSchedules')
        .set((eb) => ({ runs: eb('runs', '+', 1) }))
        .where('id', '=', run.scheduleId)
        .execute();
    }
  }

  /** Marks a run going as cancelled; false when it had ended (or there is none). */
  async markCancelled(trx: Trx, runId: string): Promise<boolean> {
    const r = await trx
      .updateTable('backupJobRuns')
      .set({ cancelled: 1 })
      .where('id', '=', runId)
      .where('endedAt', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * The run as committed now, held for the rest of the transaction (see {@link current}): whoever
   * moves a run's members takes its row first, so two ends of one run read each other's moves.
   */
  async lockRun(trx: Trx, runId: string): Promise<BackupJobRunRow | undefined> {
    return current(this.db, trx.selectFrom('backupJobRuns').selectAll().where('id', '=', runId)).executeTakeFirst();
  }

  /** A run's members as committed now, in job order (read after {@link lockRun}). */
  async currentMembers(trx: Trx, runId: string): Promise<BackupJobMemberRow[]> {
    return current(
      this.db,
      trx.selectFrom('backupJobMembers').selectAll().where('runId', '=', runId).orderBy('position'),
    ).execute();
  }

  /**
   * Moves the members at `positions` that are still in set `from` (the condition is the arbiter:
   * whoever moved one first wins); answers how many moved.
   */
  async moveMembers(
    trx: Trx,
    runId: string,
    positions: readonly number[],
    from: JobSet,
    change: Pick<BackupJobMemberRow, 'set'> &
      Partial<Pick<BackupJobMemberRow, 'taskId' | 'errorCode' | 'errorMessage'>>,
  ): Promise<number> {
    if (positions.length === 0) return 0;
    const r = await trx
      .updateTable('backupJobMembers')
      .set(change)
      .where('runId', '=', runId)
      .where('position', 'in', [...positions])
      .where('set', '=', from)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** OUTDATED members of runs still going whose instance `scope` covers, by run and job order. */
  async outdatedIn(trx: Trx, scope: MaintenanceScope): Promise<{ runId: string; instanceId: string }[]> {
    return trx
      .selectFrom('backupJobMembers')
      .innerJoin('backupJobRuns', 'backupJobRuns.id', 'backupJobMembers.runId')
      .innerJoin('instances', 'instances.id', 'backupJobMembers.instanceId')
      .select(['backupJobMembers.runId', 'backupJobMembers.instanceId'])
      .where('backupJobRuns.endedAt', 'is', null)
      .where('backupJobMembers.set', '=', 'OUTDATED')
      .where(inScope(scope, 'instances.zone', 'instances.agentId'))
      .orderBy('backupJobMembers.runId')
      .orderBy('backupJobMembers.position')
      .execute();
  }

  /** The ONGOING member whose backup this task is. */
  async ongoingMemberOf(trx: Trx, taskId: string): Promise<BackupJobMemberRow | undefined> {
    return trx
      .selectFrom('backupJobMembers')
      .selectAll()
      .where('taskId', '=', taskId)
      .where('set', '=', 'ONGOING')
      .executeTakeFirst();
  }

  /** Ends a run going in `state` and frees its job for the next; false when it had ended. */
  async closeRun(trx: Trx, run: BackupJobRunRow, state: RunState, now: number): Promise<boolean> {
    const r = await trx
      .updateTable('backupJobRuns')
      .set({ state, endedAt: now })
      .where('id', '=', run.id)
      .where('endedAt', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    await trx
      .updateTable('backupJobs')
      .set({ activeRunId: null })
      .where('id', '=', run.jobId)
      .where('activeRunId', '=', run.id)
      .execute();
    return true;
  }

  /** An instance with its offering and the offering's provider, as far as they still exist. */
  async memberTarget(trx: Trx, instanceId: string): Promise<CatalogChain> {
    return catalogChain(trx, instanceId);
  }

  /** The newest restore point of an instance (an incremental backup's parent). */
  async newestBackupOf(trx: Trx, instanceId: string): Promise<{ externalId: string } | undefined> {
    return trx
      .selectFrom('backups')
      .select('externalId')
      .where('instanceId', '=', instanceId)
      .orderBy('id', 'desc')
      .executeTakeFirst();
  }

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

  private async assertUnlocked(trx: Trx, jobId: string): Promise<BackupJobRow> {
    const job = await this.get(jobId, trx);
    if (!job) throw goneError(jobId);
    if (job.locked === 1) throw lockedError(jobId);
    return job;
  }
}

/** The event row of something done to a job, with who did it (null: the run itself) and when. */
export function jobEvent(
  job: Pick<BackupJobRow, 'id' | 'tenantId'>,
  type: string,
  message: string,
  actor: Actor | null,
  now: number,
  data: Record<string, unknown> = {},
): Insertable<EventRow> {
  return {
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
  };
}

/** A member row as the rules of domain/job-run.ts see it. */
export const runMember = (m: Pick<BackupJobMemberRow, 'instanceId' | 'position' | 'set'>): RunMember => ({
  instanceId: m.instanceId,
  position: m.position,
  set: m.set as JobSet,
});

const goneError = (id: string) => new ConflictError(`backup job ${id} was deleted meanwhile`, 'job_gone');
export const lockedError = (id: string) =>
  new ConflictError(`backup job ${id} is locked: unlock it first`, 'job_locked');
export const runningError = (id: string, runId: string | null) =>
  new ConflictError(`backup job ${id} has a run going (${runId ?? '?'})`, 'job_running');
