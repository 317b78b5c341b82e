import { visibleRow, defaultPriority, isSpAdmin, type Principal } from '../domain/access.js';
import {
  ConflictError,
  ForbiddenError,
  InputError,
  MaintenanceError,
  NotAllowedError,
  NotFoundError,
} from '../domain/errors.js';
import { MAINTENANCE_CODE } from '../domain/maintenance.js';
import {
  managedBySp,
  MEMBER_ERRORS,
  memberRefusal,
  nextFireWithin,
  priorityAfterChange,
  priorityAllowed,
  retryTargets,
  runProgress,
  scheduleEnded,
  setsOf,
  type JobSet,
  type RunMember,
} from '../domain/job-run.js';
import { fireSince, jobScheduleFloor } from '../domain/schedule.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import { newId } from '../store/ids.js';
import {
  lockedError,
  runningError,
  type Actor,
  type JobPatch,
  type JobRepository,
  type MemberWithTask,
  type RunTrigger,
} from '../store/job-repository.js';
import type { PageRequest } from '../store/page.js';
import type { QuotaRepository } from '../store/quota-repository.js';
import type { ScheduleRepository } from '../store/schedule-repository.js';
import type { BackupJobRow, BackupJobRunRow, BackupJobScheduleRow, NewJob, NewJobSchedule } from '../store/schema.js';
import type { TaskRepository } from '../store/task-repository.js';
import type { TenantRepository } from '../store/tenant-repository.js';
import { checkSchedule, nextAfter } from './cron.js';
import type { JobRuns } from '../lifecycle/job-runs.js';
import { assertValidSchedule } from './schedules.js';
import type { Clock } from '../clock.js';

export type Mode = 'FULL' | 'INCREMENT';
export type FsFreeze = 'NONE' | 'AGENT' | 'SUSPEND';
export type ScheduleEndInput = { afterRuns: number } | { at: string } | null;

export interface ScheduleInput {
  cron: string;
  timezone?: string | undefined;
  end?: ScheduleEndInput | undefined;
}

export interface JobInput {
  name: string;
  instanceIds: string[];
  mode: Mode;
  reset?: boolean | undefined;
  keepLast?: number | null | undefined;
  fsFreeze?: FsFreeze | undefined;
  priority?: number | undefined;
  execution: 'SEQUENTIAL' | 'PARALLEL';
  schedules?: ScheduleInput[] | undefined;
  tenantId?: string | undefined;
}

export type JobPatchInput = Partial<Omit<JobInput, 'schedules'>>;

/** Members shown with each run of a runs page; the rest are paged at `…/runs/{runId}/members`. */
export const RUN_MEMBERS_SHOWN = 10;

export const jobScheduleKey = (scheduleId: string) => `job:${scheduleId}`;

const actorOf = (p: Principal): Actor => ({ tokenId: p.tokenId, role: p.role });
const iso = (t: number) => new Date(t).toISOString();
const seconds = (ms: number) => Math.round(ms / 1000);

/** What the backup-job service is built from. */
export interface BackupJobsDeps {
  jobs: JobRepository;
  runs: JobRuns;
  catalog: CatalogRepository;
  tenants: TenantRepository;
  quotas: QuotaRepository;
  tasks: TaskRepository;
  schedules: ScheduleRepository;
  /** What time it is: schedule fire times, ends, nextRunAt and every stored time count by it. */
  clock: Clock;
  wake: () => void;
}

/**
 * Backup jobs as the API sees them: policy (tenant, priority band, offerings that allow a
 * tenant's jobs), validation naming the field, and the view with sets, last run and progress.
 * Runs start and move in the job-run engine (lifecycle/job-runs.ts); this wakes the dispatcher once
 * they commit.
 */
export class BackupJobs {
  constructor(private readonly deps: BackupJobsDeps) {}

  async visible(p: Principal, id: string): Promise<BackupJobRow> {
    return visibleRow(p, await this.deps.jobs.get(id), 'backup job', id);
  }

  async create(p: Principal, input: JobInput): Promise<BackupJobRow> {
    const tenantId = await this.owningTenant(p, input.tenantId);
    const priority = input.priority ?? defaultPriority(p);
    this.assertPriority(p, priority);
    await this.assertInstances(p, tenantId, input.instanceIds, priority);
    const now = this.deps.clock.now();
    const floorS = await this.scheduleFloor(input.instanceIds);
    const schedules = (input.schedules ?? []).map((s, i) => this.scheduleRow(s, '', now, floorS, `schedules.${i}.`));
    await this.deps.quotas.assertWithin(tenantId, 'membersPerJob', 0, input.instanceIds.length);
    await this.deps.quotas.assertWithin(tenantId, 'schedulesPerJob', 0, schedules.length);
    await this.deps.quotas.reserve(tenantId, 'jobs', 1);
    const job: NewJob = {
      id: newId('job', now),
      tenantId,
      name: input.name,
      instanceIds: JSON.stringify(input.instanceIds),
      mode: input.mode,
      reset: input.reset ? 1 : 0,
      keepLast: input.keepLast ?? null,
      fsFreeze: input.fsFreeze ?? 'NONE',
      priority,
      execution: input.execution,
      locked: 0,
      activeRunId: null,
      lastRunId: null,
      createdAt: now,
      updatedAt: now,
    };
    return this.deps.runs.create(
      job,
      schedules.map((s) => ({ ...s, jobId: job.id })),
      actorOf(p),
    );
  }

  async update(p: Principal, id: string, input: JobPatchInput): Promise<BackupJobRow> {
    const job = await this.visible(p, id);
    if (job.locked === 1) throw lockedError(id);
    if (input.tenantId !== undefined && !isSpAdmin(p))
      throw new ForbiddenError("only the service provider may change a backup job's tenant");
    const tenantId = input.tenantId ?? job.tenantId;
    if (input.tenantId !== undefined && !(await this.deps.tenants.get(tenantId)))
      throw new InputError(`tenant ${tenantId} does not exist`, [{ path: 'tenantId', message: 'unknown tenant' }]);
    if (input.priority !== undefined) this.assertPriority(p, input.priority);
    // A tenant never keeps a priority above its band, whoever set it.
    const priority = priorityAfterChange(input.priority ?? job.priority, isSpAdmin(p));
    if (input.instanceIds !== undefined || input.tenantId !== undefined) {
      await this.assertInstances(
        p,
        tenantId,
        input.instanceIds ?? instanceIdsOf(job),
        priority,
        input.instanceIds === undefined,
      );
    }
    if (input.instanceIds !== undefined) {
      const members = instanceIdsOf(job).length;
      await this.deps.quotas.assertWithin(tenantId, 'membersPerJob', members, input.instanceIds.length - members);
      await this.assertSchedulesFit(job.id, input.instanceIds);
    }
    if (tenantId !== job.tenantId) await this.deps.quotas.reserve(tenantId, 'jobs', 1);
    const patch: JobPatch = {
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.tenantId !== undefined ? { tenantId: input.tenantId } : {}),
      ...(input.instanceIds !== undefined ? { instanceIds: input.instanceIds } : {}),
      ...(input.mode !== undefined ? { mode: input.mode } : {}),
      ...(input.reset !== undefined ? { reset: input.reset ? 1 : 0 } : {}),
      ...(input.keepLast !== undefined ? { keepLast: input.keepLast } : {}),
      ...(input.fsFreeze !== undefined ? { fsFreeze: input.fsFreeze } : {}),
      ...(input.priority !== undefined ? { priority: input.priority } : {}),
      ...(input.execution !== undefined ? { execution: input.execution } : {}),
    };
    if (Object.keys(patch).length === 0) return job;
    if (priority !== (input.priority ?? job.priority)) patch.priority = priority;
    return this.deps.runs.change(id, patch, actorOf(p), 'job.changed', this.deps.clock.now());
  }

  async setLocked(p: Principal, id: string, locked: boolean): Promise<BackupJobRow> {
    const job = await this.visible(p, id);
    if ((job.locked === 1) === locked) return job;
    return this.deps.runs.change(
      id,
      { locked: locked ? 1 : 0 },
      actorOf(p),
      locked ? 'job.locked' : 'job.unlocked',
      this.deps.clock.now(),
    );
  }

  async delete(p: Principal, id: string): Promise<void> {
    await this.visible(p, id);
    await this.deps.runs.remove(id, actorOf(p), this.deps.clock.now());
  }

  /** A one-shot run of every instance of the job (202). */
  async run(p: Principal, id: string): Promise<BackupJobRow> {
    const job = await this.visible(p, id);
    return this.start(job, 'run', null, instanceIdsOf(job), actorOf(p));
  }

  /** A new run of exactly the ERROR set of the last run (those still in the job). */
  async retry(p: Principal, id: string): Promise<BackupJobRow> {
    const job = await this.visible(p, id);
    if (job.locked === 1) throw lockedError(id);
    if (job.activeRunId) throw runningError(id, job.activeRunId);
    if (!job.lastRunId) throw new ConflictError(`backup job ${id} has not run yet`, 'nothing_to_retry');
    const members = await this.deps.jobs.membersOf([job.lastRunId]);
    const failed = new Set(retryTargets(members.map(asRunMember)));
    const targets = instanceIdsOf(job).filter((i) => failed.has(i));
    if (targets.length === 0)
      throw new ConflictError(`the last run of backup job ${id} left no instance in ERROR`, 'nothing_to_retry');
    return this.start(job, 'retry', null, targets, actorOf(p));
  }

  /** Cancels the run going: nothing of it stays queued; running backups are asked to stop. */
  async cancel(p: Principal, id: string): Promise<BackupJobRow> {
    const job = await this.visible(p, id);
    if (job.locked === 1) throw lockedError(id);
    if (!job.activeRunId) throw new ConflictError(`backup job ${id} has no run going`, 'job_not_running');
    for (const taskId of await this.deps.runs.cancelRun(job, actorOf(p), this.deps.clock.now())) {
      try {
        await this.deps.tasks.requestCancel(taskId);
      } catch (err) {
        // Ended meanwhile: its end already moved the member on.
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    this.deps.wake();
    return (await this.deps.jobs.get(id))!;
  }

  /**
   * A claimed fire of a job schedule (inside the scheduler's claim transaction): starts a run
   * unless the job is locked or a run goes, which skips the fire with a `job.skipped` event.
   */
  async fire(s: BackupJobScheduleRow, fireAt: number): Promise<'started' | 'skipped'> {
    const job = await this.deps.jobs.get(s.jobId);
    if (!job) return 'skipped';
    const actor = { scheduleId: s.id };
    const outcome = await this.deps.runs.startRun(
      job.id,
      { trigger: 'schedule', scheduleId: s.id, instanceIds: instanceIdsOf(job) },
      actor,
      this.deps.clock.now(),
    );
    if ('run' in outcome) {
      this.deps.wake();
      return 'started';
    }
    const reason =
      outcome.refused === 'job_locked' ? 'the job is locked' : `run ${job.activeRunId ?? '?'} is still going`;
    await this.deps.runs.record(
      job,
      'job.skipped',
      `backup job ${job.name}: scheduled run for ${iso(fireAt)} skipped: ${reason}`,
      actor,
      this.deps.clock.now(),
      { scheduleId: s.id, fireAt: iso(fireAt), reason: outcome.refused },
    );
    return 'skipped';
  }

  async addSchedule(p: Principal, id: string, input: ScheduleInput): Promise<NewJobSchedule> {
    const job = await this.visible(p, id);
    if (job.locked === 1) throw lockedError(id);
    const row = {
      ...this.scheduleRow(input, job.id, this.deps.clock.now(), await this.scheduleFloor(instanceIdsOf(job))),
    };
    await this.deps.quotas.reserve(job.tenantId, 'schedulesPerJob', 1, job.id);
    await this.deps.runs.addSchedule(job, row, actorOf(p));
    await this.keepInBand(p, job);
    return row;
  }

  async updateSchedule(
    p: Principal,
    id: string,
    sid: string,
    input: Partial<ScheduleInput>,
  ): Promise<BackupJobScheduleRow> {
    const job = await this.visible(p, id);
    if (job.locked === 1) throw lockedError(id);
    const current = (await this.deps.jobs.schedulesOf(job.id)).find((s) => s.id === sid);
    if (!current) throw new NotFoundError('schedule', sid);
    const merged = this.scheduleRow(
      {
        cron: input.cron ?? current.cron,
        timezone: input.timezone ?? current.timezone,
        end: input.end !== undefined ? input.end : endOf(current),
      },
      job.id,
      this.deps.clock.now(),
      await this.scheduleFloor(instanceIdsOf(job)),
    );
    const row = await this.deps.runs.changeSchedule(
      job,
      sid,
      { cron: merged.cron, timezone: merged.timezone, endAfterRuns: merged.endAfterRuns, endAt: merged.endAt },
      actorOf(p),
      this.deps.clock.now(),
    );
    if (!row) throw new NotFoundError('schedule', sid);
    await this.keepInBand(p, job);
    return row;
  }

  async deleteSchedule(p: Principal, id: string, sid: string): Promise<void> {
    const job = await this.visible(p, id);
    if (job.locked === 1) throw lockedError(id);
    if (!(await this.deps.runs.removeSchedule(job, sid, actorOf(p), this.deps.clock.now())))
      throw new NotFoundError('schedule', sid);
    await this.keepInBand(p, job);
  }

  /**
   * After a tenant user changed the job's schedules: a priority above the tenant's band drops to
   * 49, in the request's transaction (the one that wrote the schedule).
   */
  private async keepInBand(p: Principal, job: BackupJobRow): Promise<void> {
    const priority = priorityAfterChange(job.priority, isSpAdmin(p));
    if (priority !== job.priority)
      await this.deps.runs.change(job.id, { priority }, actorOf(p), 'job.changed', this.deps.clock.now());
  }

  // --- views ---

  async view(job: BackupJobRow) {
    const ids = instanceIdsOf(job);
    // The run before the sets: a run closes in the transaction that moves its last member, so a
    // closed run read first is never shown beside sets from before its close (read the other way
    // round, a close committed between the two reads showed a succeeded run with a member short).
    const run = job.lastRunId ? await this.deps.jobs.getRun(job.lastRunId) : undefined;
    const latest = await this.deps.jobs.latestSets(job.id, ids);
    const sets = setsOf(
      ids.map((instanceId, position) => ({ instanceId, position, set: latest.get(instanceId) ?? 'OUTDATED' })),
    );
    const now = this.deps.clock.now();
    let progress = null;
    if (run) {
      const members = await this.deps.jobs.membersOf([run.id]);
      const p = runProgress(
        members.map((m) => ({
          set: m.set as JobSet,
          ...(m.percent != null ? { percent: m.percent } : {}),
          ...(m.bytesDone != null ? { bytesDone: m.bytesDone } : {}),
          ...(m.bytesTotal != null ? { bytesTotal: m.bytesTotal } : {}),
        })),
        run.startedAt,
        run.endedAt ?? now,
      );
      progress = { percent: p.percent, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, etaSeconds: p.etaSeconds };
    }
    return {
      id: job.id,
      tenantId: job.tenantId,
      name: job.name,
      instanceIds: ids,
      mode: job.mode as Mode,
      reset: job.reset === 1,
      keepLast: job.keepLast,
      fsFreeze: job.fsFreeze as FsFreeze,
      priority: job.priority,
      execution: job.execution as 'SEQUENTIAL' | 'PARALLEL',
      locked: job.locked === 1,
      schedules: await Promise.all((await this.deps.jobs.schedulesOf(job.id)).map((s) => this.scheduleView(s))),
      sets,
      lastRun: run
        ? {
            id: run.id,
            startedAt: iso(run.startedAt),
            durationSeconds: seconds((run.endedAt ?? now) - run.startedAt),
            state: run.state,
          }
        : null,
      progress,
    };
  }

  async scheduleView(s: NewJobSchedule) {
    const now = this.deps.clock.now();
    const since = fireSince(await this.deps.schedules.lastFireOf(jobScheduleKey(s.id)), s.updatedAt);
    const next = nextFireWithin(s, nextAfter(s.cron, s.timezone)(Math.max(since, now)), now);
    return {
      id: s.id,
      cron: s.cron,
      timezone: s.timezone,
      end: endOf(s),
      runs: s.runs,
      nextRunAt: next === null ? null : iso(next),
    };
  }

  /** A page of the job's runs, each with its member counts by set and its first members. */
  async runsPage(p: Principal, id: string, page: PageRequest) {
    const job = await this.visible(p, id);
    const runs = await this.deps.jobs.runs(job.id, page);
    const now = this.deps.clock.now();
    const ids = runs.items.map((r) => r.id);
    const counts = await this.deps.jobs.memberCounts(ids);
    const members = await this.deps.jobs.membersOf(ids, RUN_MEMBERS_SHOWN);
    return {
      items: runs.items.map((r) =>
        runView(
          r,
          counts.get(r.id),
          members.filter((m) => m.runId === r.id),
          now,
        ),
      ),
      nextCursor: runs.nextCursor,
    };
  }

  /** A page of one run's members, in the job's order (404 for a run not of this job). */
  async runMembersPage(p: Principal, id: string, runId: string, page: PageRequest) {
    const job = await this.visible(p, id);
    const run = await this.deps.jobs.getRun(runId);
    if (!run || run.jobId !== job.id) throw new NotFoundError('backup job run', runId);
    const members = await this.deps.jobs.memberPage(run.id, page);
    return { items: members.items.map(memberView), nextCursor: members.nextCursor };
  }

  /** Whether a job schedule is still live (the scheduler skips ended ones). */
  ended(s: BackupJobScheduleRow): boolean {
    return scheduleEnded(s, this.deps.clock.now());
  }

  // --- rules ---

  private async start(
    job: BackupJobRow,
    trigger: RunTrigger,
    scheduleId: string | null,
    instanceIds: string[],
    actor: Actor,
  ): Promise<BackupJobRow> {
    const outcome = await this.deps.runs.startRun(
      job.id,
      { trigger, scheduleId, instanceIds },
      actor,
      this.deps.clock.now(),
    );
    if (!('run' in outcome)) {
      if (outcome.refused === 'job_locked') throw lockedError(job.id);
      if (outcome.refused === 'job_gone') throw new NotFoundError('backup job', job.id);
      throw runningError(job.id, (await this.deps.jobs.get(job.id))?.activeRunId ?? null);
    }
    // Maintenance, or the offerings' policy, refused every instance: the run (all in ERROR) is
    // recorded, the answer is 503 (all maintenance) or 403 not_allowed.
    const members = await this.deps.jobs.membersOf([outcome.run.id]);
    const refused = members.filter((m) => m.errorCode === MAINTENANCE_CODE);
    const notAllowed = members.filter((m) => m.errorCode === MEMBER_ERRORS.NOT_ALLOWED);
    const runId = outcome.run.id;
    if (members.length > 0 && refused.length === members.length)
      throw new MaintenanceError(refused[0]!.errorMessage ?? '', { runId });
    if (notAllowed.length > 0 && refused.length + notAllowed.length === members.length)
      throw new NotAllowedError(
        `no instance of backup job ${job.id} may be backed up now: ${notAllowed.map((m) => m.errorMessage).join('; ')}`,
        { runId },
      );
    this.deps.wake();
    return (await this.deps.jobs.get(job.id))!;
  }

  private async owningTenant(p: Principal, requested: string | undefined): Promise<string> {
    if (requested !== undefined && !isSpAdmin(p) && requested !== p.tenantId)
      throw new InputError('tenantId may only be given by an sp-admin acting for a tenant', [
        { path: 'tenantId', message: 'not allowed' },
      ]);
    const tenantId = requested ?? p.tenantId;
    if (!(await this.deps.tenants.get(tenantId)))
      throw new InputError(`tenant ${tenantId} does not exist`, [{ path: 'tenantId', message: 'unknown tenant' }]);
    return tenantId;
  }

  private assertPriority(p: Principal, priority: number): void {
    if (!priorityAllowed(priority, isSpAdmin(p)))
      throw new ForbiddenError(`priority ${priority} is in the service provider's band (50-99); a tenant may use 0-49`);
  }

  /**
   * Every instance must exist in the job's tenant and have an offering; a tenant's job may not
   * hold an instance whose offering allows neither ad-hoc nor user backups (403), unless the
   * service provider makes it a job it manages (in its priority band): the rule every start of
   * a member checks again. Problems name the index: `instanceIds.3`.
   */
  private async assertInstances(
    p: Principal,
    tenantId: string,
    ids: string[],
    priority: number,
    fromJob = false,
  ): Promise<void> {
    const problems: { path: string; message: string }[] = [];
    const forbidden: string[] = [];
    for (const [i, id] of ids.entries()) {
      const path = `instanceIds.${i}`;
      const instance = await this.deps.catalog.getInstance(id);
      if (!instance || instance.tenantId !== tenantId) {
        problems.push({ path, message: `unknown instance of tenant ${tenantId}` });
        continue;
      }
      const offering = instance.offeringId ? await this.deps.catalog.getOffering(instance.offeringId) : undefined;
      if (!offering) {
        problems.push({ path, message: `instance ${id} has no backup offering` });
        continue;
      }
      if (memberRefusal(offering, isSpAdmin(p) && managedBySp(priority)) !== null) forbidden.push(path);
    }
    if (problems.length > 0)
      throw new InputError(
        `${fromJob ? "the job's instances do not fit the new tenant" : 'instanceIds'}: ${problems.map((x) => `${x.path}: ${x.message}`).join('; ')}`,
        problems,
      );
    if (forbidden.length > 0)
      throw new ForbiddenError(
        `${forbidden.join(', ')}: the instance's offering allows neither ad-hoc nor user backups, so it cannot join a tenant's job (the service provider may put it in a job of priority 50-99, which it manages)`,
      );
  }

  /**
   * How often the job's schedules may fire: the strictest floor of its instances' offerings,
   * whoever sets the schedule (the floor is about load, so it binds the SP admin too).
   */
  private async scheduleFloor(instanceIds: string[]): Promise<number> {
    const floors: number[] = [];
    for (const id of instanceIds) {
      const instance = await this.deps.catalog.getInstance(id);
      const offering = instance?.offeringId ? await this.deps.catalog.getOffering(instance.offeringId) : undefined;
      if (offering) floors.push(offering.minUserScheduleIntervalS);
    }
    return jobScheduleFloor(floors);
  }

  /**
   * New instances may bring a stricter floor: the job's schedules must keep to it, or the change
   * is refused (else re-targeting a job would slip a schedule past its instances' floor).
   */
  private async assertSchedulesFit(jobId: string, instanceIds: string[]): Promise<void> {
    const floorS = await this.scheduleFloor(instanceIds);
    for (const s of await this.deps.jobs.schedulesOf(jobId)) {
      const { problems, tooFrequent } = checkSchedule(s.cron, s.timezone, this.deps.clock.now(), { floorS });
      if (tooFrequent) {
        const message = `schedule ${s.id} (${s.cron}) ${problems[0]!.message}`;
        throw new InputError(`instanceIds: ${message}`, [{ path: 'instanceIds', message }], 'schedule_too_frequent');
      }
    }
  }

  private scheduleRow(input: ScheduleInput, jobId: string, now: number, floorS: number, prefix = ''): NewJobSchedule {
    const timezone = input.timezone ?? 'UTC';
    assertValidSchedule(input.cron, timezone, now, { prefix, floorS });
    const end = input.end ?? null;
    return {
      id: newId('sch', now),
      jobId,
      cron: input.cron,
      timezone,
      endAfterRuns: end && 'afterRuns' in end ? end.afterRuns : null,
      endAt: end && 'at' in end ? Date.parse(end.at) : null,
      runs: 0,
      createdAt: now,
      updatedAt: now,
    };
  }
}

export function instanceIdsOf(job: BackupJobRow): string[] {
  return JSON.parse(job.instanceIds) as string[];
}

function endOf(s: NewJobSchedule): ScheduleEndInput {
  if (s.endAfterRuns !== null) return { afterRuns: s.endAfterRuns };
  if (s.endAt !== null) return { at: iso(s.endAt) };
  return null;
}

function asRunMember(m: MemberWithTask): RunMember {
  return { instanceId: m.instanceId, position: m.position, set: m.set as JobSet };
}

function runView(r: BackupJobRunRow, counts: Record<JobSet, number> | undefined, first: MemberWithTask[], now: number) {
  const c = counts ?? { OUTDATED: 0, ONGOING: 0, UPDATED: 0, ERROR: 0 };
  return {
    id: r.id,
    trigger: r.trigger as RunTrigger,
    startedAt: iso(r.startedAt),
    endedAt: r.endedAt === null ? null : iso(r.endedAt),
    durationSeconds: seconds((r.endedAt ?? now) - r.startedAt),
    state: r.state,
    memberCounts: {
      total: c.OUTDATED + c.ONGOING + c.UPDATED + c.ERROR,
      outdated: c.OUTDATED,
      ongoing: c.ONGOING,
      updated: c.UPDATED,
      error: c.ERROR,
    },
    members: first.map(memberView),
  };
}

function memberView(m: MemberWithTask) {
  return {
    instanceId: m.instanceId,
    set: m.set as JobSet,
    taskId: m.taskId,
    error: m.errorCode ? { code: m.errorCode, message: m.errorMessage ?? '' } : null,
  };
}
