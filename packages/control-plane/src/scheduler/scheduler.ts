import {
  dueFire,
  fireSince,
  planFire,
  SLA_PRIORITY,
  USER_SCHEDULE_PRIORITY,
  type DueFire,
} from '../domain/schedule.js';
import type { Logger } from '../logger.js';
import { nextAfter } from '../service/cron.js';
import { jobScheduleKey, type BackupJobs } from '../service/backup-jobs.js';
import type { Operations } from '../service/operations.js';
import { slaScheduleKey, userScheduleKey } from '../service/schedules.js';
import type { CatalogRepository, Sla } from '../store/catalog-repository.js';
import type { Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import { afterCommit, inRequestTransaction } from '../store/request-scope.js';
import type { ScheduleRepository } from '../store/schedule-repository.js';
import type { BackupJobScheduleRow, InstanceRow, OfferingRow } from '../store/schema.js';
import type { TaskRepository } from '../store/task-repository.js';
import type { Clock } from './clock.js';
import type { JobHistorySweep } from './job-history.js';
import type { ProviderRounds } from './provider-rounds.js';
import { retryTransient } from './retry.js';
import type { RpoWatch } from './rpo-watch.js';

interface Target {
  instance: InstanceRow;
  offering: OfferingRow | undefined;
}

/**
 * Fires user schedules and SLA offerings. Each tick reads now from the clock, and for every
 * schedule whose fire is due claims it (a row unique per schedule and fire time) and makes its
 * backup tasks in the same transaction, so replicas and restarts neither double nor drop a fire.
 * Then it runs the RPO watch over the SLA offerings at the same now.
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
    private readonly jobs?: {
      schedules(): Promise<BackupJobScheduleRow[]>;
      service: BackupJobs;
      history?: JobHistorySweep;
    },
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
      const last = await this.schedules.lastFires();
      for (const s of await this.schedules.listUserSchedules()) {
        const key = userScheduleKey(s.instanceId);
        const due = this.due(key, s.cron, s.timezone, fireSince(last.get(key), s.updatedAt), now);
        if (!due) continue;
        await this.fire(key, 'user', due, now, async () => {
          const instance = await this.catalog.getInstance(s.instanceId);
          if (!instance) return [];
          const offering = instance.offeringId ? await this.catalog.getOffering(instance.offeringId) : undefined;
          return [{ instance, offering }];
        });
      }
      const slaOfferings = await this.schedules.listSlaOfferings();
      for (const o of slaOfferings) {
        const sla = JSON.parse(o.sla!) as Sla;
        const key = slaScheduleKey(o.id);
        const due = this.due(
          key,
          sla.cron,
          sla.timezone ?? 'UTC',
          fireSince(last.get(key), o.slaSetAt ?? o.createdAt),
          now,
        );
        if (!due) continue;
        await this.fire(key, 'sla', due, now, async () => {
          // An instance whose provider runs (or may be about to run) the schedule is not Cairn's to fire.
          const instances = await this.catalog.instancesCairnFires(o.id);
          return instances.map((instance) => ({ instance, offering: o }));
        });
      }
      for (const s of (await this.jobs?.schedules()) ?? []) {
        if (this.jobs!.service.ended(s)) continue;
        const key = jobScheduleKey(s.id);
        const due = this.due(key, s.cron, s.timezone, fireSince(last.get(key), s.updatedAt), now);
        // A fire time after the schedule's end does not run.
        if (!due || (s.endAt !== null && due.fireAt > s.endAt)) continue;
        await this.claimed(key, due, now, async () => {
          const outcome = await this.jobs!.service.fire(s, due.fireAt);
          afterCommit(() => this.log.info({ schedule: key, fireAt: due.fireAt, outcome }, 'job schedule fired'));
        });
      }
      await this.providerRounds?.tick(now, last);
      await this.jobs?.history?.tick(now, last);
      await this.rpo.evaluate(slaOfferings, now);
      this.ticked(now);
    } finally {
      this.running = false;
    }
  }

  /** A schedule stored before its expression was checked must not stop the others. */
  private due(key: string, cron: string, timezone: string, since: number, now: number): DueFire | null {
    try {
      return dueFire(nextAfter(cron, timezone), since, now);
    } catch (err) {
      this.log.warn({ err, schedule: key, cron, timezone }, 'schedule cannot be evaluated; skipped');
      return null;
    }
  }

  /** Runs `work` in the transaction that claims the fire; a lost claim does nothing. */
  private async claimed(key: string, due: DueFire, now: number, work: () => Promise<void>): Promise<void> {
    await retryTransient(() =>
      inRequestTransaction(this.root, async () => {
        // Claimed before any task exists: whoever loses the claim rolls back and does nothing.
        if (!(await this.schedules.claimFire(key, due.fireAt, due.missed, now))) return false;
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
    targets: () => Promise<Target[]>,
  ): Promise<void> {
    await this.claimed(key, due, now, async () => {
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
        const plan = planFire({
          kind,
          activeBackupTaskId: await this.tasks.activeBackupOf(instance.id),
          userSchedulesAllowed: offering?.allowUserSchedules === 1,
        });
        if (plan.action === 'skip' || !offering) {
          await this.events.forInstance(
            {
              tenantId: instance.tenantId,
              instanceId: instance.id,
              type: 'schedule.skipped',
              message: `scheduled backup for ${fireAt} skipped: ${plan.action === 'skip' ? plan.reason : 'the instance has no offering'}`,
              data,
            },
            now,
          );
          continue;
        }
        await this.operations.scheduledBackup(
          instance,
          offering,
          kind === 'sla' ? SLA_PRIORITY : USER_SCHEDULE_PRIORITY,
        );
        made++;
      }
      afterCommit(() => this.log.info({ schedule: key, fireAt, missed: due.missed, tasks: made }, 'schedule fired'));
    });
  }
}
