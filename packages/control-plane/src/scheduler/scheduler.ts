import { setImmediate } from 'node:timers/promises';
import {
  dueFire,
  fireSince,
  nextFire,
  NO_NEXT_FIRE,
  planFire,
  SLA_PRIORITY,
  USER_SCHEDULE_PRIORITY,
  type CronCalendar,
  type DueFire,
} from '../domain/schedule.js';
import type { Logger } from '../logger.js';
import { cronCalendar } from '../service/cron.js';
import { jobScheduleKey, type BackupJobs } from '../service/backup-jobs.js';
import type { Operations } from '../service/operations.js';
import { slaScheduleKey, userScheduleKey } from '../service/schedules.js';
import type { CatalogRepository, Sla } from '../store/catalog-repository.js';
import type { Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import { afterCommit, inRequestTransaction } from '../store/request-scope.js';
import type { DueSchedule, NextFireMove, ScheduleKind, ScheduleRepository } from '../store/schedule-repository.js';
import type { BackupJobScheduleRow, InstanceRow, OfferingRow, UserScheduleRow } from '../store/schema.js';
import type { TaskRepository } from '../store/task-repository.js';
import type { Clock } from './clock.js';
import type { JobHistorySweep } from './job-history.js';
import type { ProviderRounds } from './provider-rounds.js';
import { retryTransient } from './retry.js';
import type { RpoWatch } from './rpo-watch.js';

/** Schedules read per query of the due ones. */
const BATCH = 500;
/** The longest stretch of scheduling work before the event loop gets a turn. */
const YIELD_AFTER_MS = 5;

/** A due schedule read for evaluation, whichever its kind. */
interface Evaluated {
  key: string;
  cron: string;
  timezone: string;
  /** Where its fire times count from when it has no claimed fire. */
  setAt: number;
  /** Its row's change marker (updatedAt, slaSetAt): a change meanwhile wins over this tick. */
  version: number | null;
  user?: UserScheduleRow;
  offering?: OfferingRow;
  job?: BackupJobScheduleRow;
}

interface Target {
  instance: InstanceRow;
  offering: OfferingRow | undefined;
}

/**
 * Fires user schedules, SLA offerings and backup job schedules. Each tick reads now from the
 * clock and only the schedules whose next fire time (a column on each schedule's row, indexed)
 * has passed or is not computed yet; for each whose fire is due it claims it (a row unique per
 * schedule and fire time), moves its next fire time and makes its backup tasks in the same
 * transaction, so replicas and restarts neither double nor drop a fire. Missed fire times after
 * downtime are counted by arithmetic (domain/schedule.ts firesIn). Then it runs the RPO watch
 * over the SLA offerings at the same now.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  constructor(
    private readonly root: Db,
    private readonly schedules: ScheduleRepository,
    private readonly catalog: CatalogRepository,
    private readonly tasks: TaskRepository,
    private readonly events: EventRepository,
    private readonly operations: Operations,
    private readonly rpo: RpoWatch,
    private readonly clock: Clock,
    private readonly tickMs: number,
    private readonly log: Logger,
    /** Told the clock time of every tick that completed (a test's barrier, and a metric). */
    private readonly ticked: (now: number) => void,
    /** Periodic work on every provider connection (sync, prune). */
    private readonly providerRounds?: ProviderRounds,
    /**
     * Backup job schedules: each fire starts a run of its job (or is skipped while one goes); and
     * the sweep that keeps the jobs' run history within its limits.
     */
    private readonly jobs?: { service: BackupJobs; history?: JobHistorySweep },
    /** Told of every schedule evaluated (a metric: a tick with nothing due evaluates none). */
    private readonly evaluated: () => void = () => {},
  ) {}

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.tick()
        .catch((err: unknown) => this.log.warn({ err }, 'scheduler tick failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.tickMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const now = this.clock.now();
      await this.fireDue(now);
      const lastFires = (keys: string[]) => this.schedules.lastFiresOf(keys);
      await this.providerRounds?.tick(now, lastFires);
      await this.jobs?.history?.tick(now, lastFires);
      await this.rpo.evaluate(await this.schedules.listSlaOfferings(), now);
      this.ticked(now);
    } finally {
      this.running = false;
    }
  }

  /**
   * Fires what is due at `now`: only the schedules whose next fire time (kept on their rows) has
   * passed or is not computed yet, read in bounded batches. Each is evaluated once per tick (one
   * that fails stays due for the next), and the event loop gets a turn every few ms of work.
   */
  private async fireDue(now: number): Promise<void> {
    const tried = new Set<string>();
    let slice = performance.now();
    for (;;) {
      const batch = (await this.schedules.dueSchedules(now, BATCH + tried.size)).filter(
        (d) => !tried.has(`${d.kind}:${d.id}`),
      );
      if (batch.length === 0) return;
      const ids = (kind: ScheduleKind) => batch.filter((d) => d.kind === kind).map((d) => d.id);
      const [users, offerings, jobSchedules] = await Promise.all([
        this.schedules.userSchedulesByIds(ids('user')),
        this.schedules.offeringsByIds(ids('sla')),
        this.jobs ? this.schedules.jobSchedulesByIds(ids('job')) : [],
      ]);
      const rows = new Map<string, Evaluated>();
      for (const s of users)
        rows.set(`user:${s.instanceId}`, {
          key: userScheduleKey(s.instanceId),
          cron: s.cron,
          timezone: s.timezone,
          setAt: s.updatedAt,
          version: s.updatedAt,
          user: s,
        });
      for (const o of offerings) {
        const sla = JSON.parse(o.sla!) as Sla;
        const setAt = o.slaSetAt ?? o.createdAt;
        rows.set(`sla:${o.id}`, {
          key: slaScheduleKey(o.id),
          cron: sla.cron,
          timezone: sla.timezone ?? 'UTC',
          setAt,
          version: o.slaSetAt,
          offering: o,
        });
      }
      for (const s of jobSchedules)
        rows.set(`job:${s.id}`, {
          key: jobScheduleKey(s.id),
          cron: s.cron,
          timezone: s.timezone,
          setAt: s.updatedAt,
          version: s.updatedAt,
          job: s,
        });
      const last = await this.schedules.lastFiresOf([...rows.values()].map((r) => r.key));
      for (const d of batch) {
        tried.add(`${d.kind}:${d.id}`);
        const row = rows.get(`${d.kind}:${d.id}`);
        // Gone since the batch was read (deleted, its SLA cleared): nothing to fire.
        if (!row) continue;
        try {
          await this.evaluate(d, row, last.get(row.key), now);
        } catch (err) {
          this.log.warn({ err, schedule: row.key }, 'schedule could not be fired; tried again next tick');
        }
        if (performance.now() - slice >= YIELD_AFTER_MS) {
          await setImmediate();
          slice = performance.now();
        }
      }
    }
  }

  /** One due schedule: claims its fire if one passed, and moves its next fire time forward. */
  private async evaluate(d: DueSchedule, s: Evaluated, lastFire: number | undefined, now: number): Promise<void> {
    this.evaluated();
    const move = (next: number | null): NextFireMove => ({
      kind: d.kind,
      id: d.id,
      read: d.nextFireAt,
      setAt: s.version,
      next: next ?? NO_NEXT_FIRE,
    });
    let cal: CronCalendar;
    try {
      cal = cronCalendar(s.cron, s.timezone);
    } catch (err) {
      // A schedule stored before its expression was checked must not stop the others.
      this.log.warn(
        { err, schedule: s.key, cron: s.cron, timezone: s.timezone },
        'schedule cannot be evaluated; skipped',
      );
      await this.schedules.moveNextFire(move(null));
      return;
    }
    const since = fireSince(lastFire, s.setAt);
    const due = dueFire(cal, since, now);
    let next = nextFire(cal, Math.max(since, now));
    if (s.job) {
      // An ended schedule, or a fire time after its end, does not run.
      if (this.jobs!.service.ended(s.job) || (next !== null && s.job.endAt !== null && next > s.job.endAt)) next = null;
      if (due && (this.jobs!.service.ended(s.job) || (s.job.endAt !== null && due.fireAt > s.job.endAt))) {
        await this.schedules.moveNextFire(move(next));
        return;
      }
    }
    if (!due) {
      await this.schedules.moveNextFire(move(next));
      return;
    }
    const moved = move(next);
    if (s.job) {
      const job = s.job;
      await this.claimed(s.key, due, now, moved, async () => {
        const outcome = await this.jobs!.service.fire(job, due.fireAt);
        afterCommit(() => this.log.info({ schedule: s.key, fireAt: due.fireAt, outcome }, 'job schedule fired'));
      });
    } else if (s.user) {
      const instanceId = s.user.instanceId;
      await this.fire(s.key, 'user', due, now, moved, async () => {
        const instance = await this.catalog.getInstance(instanceId);
        if (!instance) return [];
        const offering = instance.offeringId ? await this.catalog.getOffering(instance.offeringId) : undefined;
        return [{ instance, offering }];
      });
    } else {
      const o = s.offering!;
      await this.fire(s.key, 'sla', due, now, moved, async () => {
        // An instance whose provider runs (or may be about to run) the schedule is not Cairn's to fire.
        const instances = await this.catalog.instancesCairnFires(o.id);
        return instances.map((instance) => ({ instance, offering: o }));
      });
    }
  }

  /** Runs `work` in the transaction that claims the fire; a lost claim does nothing. */
  private async claimed(
    key: string,
    due: DueFire,
    now: number,
    next: NextFireMove,
    work: () => Promise<void>,
  ): Promise<void> {
    await retryTransient(() =>
      inRequestTransaction(this.root, async () => {
        // Claimed before any task exists: whoever loses the claim rolls back and does nothing
        // (the winner moves the next fire time).
        if (!(await this.schedules.claimFire(key, due.fireAt, due.missed, now))) return false;
        await this.schedules.moveNextFire(next);
        await work();
        return true;
      }),
    );
  }

  private async fire(
    key: string,
    kind: 'user' | 'sla',
    due: DueFire,
    now: number,
    next: NextFireMove,
    targets: () => Promise<Target[]>,
  ): Promise<void> {
    await this.claimed(key, due, now, next, async () => {
      const fireAt = new Date(due.fireAt).toISOString();
      let made = 0;
      for (const { instance, offering } of await targets()) {
        const data = { schedule: key, fireAt, missed: due.missed };
        if (due.missed > 0) {
          await this.events.forInstance(
            {
              tenantId: instance.tenantId,
              instanceId: instance.id,
              type: 'schedule.caught_up',
              message: `${due.missed} fire time(s) passed while no control plane ran; running once for ${fireAt}`,
              data,
            },
            now,
          );
        }
        const priority = kind === 'sla' ? SLA_PRIORITY : USER_SCHEDULE_PRIORITY;
        const plan = planFire({
          kind,
          activeBackupTaskId: await this.tasks.activeBackupOf(instance.id),
          userSchedulesAllowed: offering?.allowUserSchedules === 1,
          quota: offering ? await this.operations.scheduledBackupRefusal(instance, offering, priority) : undefined,
        });
        if (plan.action === 'skip' || !offering) {
          await this.events.forInstance(
            {
              tenantId: instance.tenantId,
              instanceId: instance.id,
              type: 'schedule.skipped',
              message: `scheduled backup for ${fireAt} skipped: ${plan.action === 'skip' ? plan.reason : 'the instance has no offering'}`,
              data: plan.action === 'skip' && plan.quota ? { ...data, quota: plan.quota } : data,
            },
            now,
          );
          continue;
        }
        await this.operations.scheduledBackup(instance, offering, priority);
        made++;
      }
      afterCommit(() => this.log.info({ schedule: key, fireAt, missed: due.missed, tasks: made }, 'schedule fired'));
    });
  }
}
