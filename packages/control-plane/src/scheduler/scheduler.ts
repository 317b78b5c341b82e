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
import type { Duty } from '../domain/duty-lease.js';
import { probeNeeded, type ProbeSeen } from '../domain/tick-probe.js';
import type { Logger } from '../logger.js';
import { cronCalendar } from '../service/cron.js';
import { jobScheduleKey, type BackupJobs } from '../service/backup-jobs.js';
import type { Operations } from '../service/operations.js';
import { slaScheduleKey, userScheduleKey } from '../service/schedules.js';
import type { CatalogRepository, Sla } from '../store/catalog-repository.js';
import type { Db, Dialect } from '../store/db.js';
import type { EventRepository, InstanceEvent } from '../store/event-repository.js';
import { afterCommit, inRequestTransaction } from '../store/request-scope.js';
import type { DueSchedule, NextFireMove, ScheduleKind, ScheduleRepository } from '../store/schedule-repository.js';
import type { BackupJobScheduleRow, InstanceRow, OfferingRow, UserScheduleRow } from '../store/schema.js';
import type { TaskRepository } from '../store/task-repository.js';
import { elapsedMs, type Clock } from '../clock.js';
import type { Duties } from './duties.js';
import type { HistorySweep } from './history.js';
import type { JobHistorySweep } from './job-history.js';
import type { ProviderRounds } from './provider-rounds.js';
import { retryTransient } from './retry.js';
import type { RpoWatch } from './rpo-watch.js';

/** Schedules read per query of the due ones. */
const BATCH = 500;
/**
 * Due fires claimed and run per transaction (one set of batched reads and inserts for them all),
 * by store. SQLite runs a transaction on the event loop from start to end: 20 fires are a few ms
 * of it. MySQL answers over the network, the loop free meanwhile: larger batches, fewer commits.
 */
export const FIRES_PER_TRANSACTION: Record<Dialect, number> = { sqlite: 20, mysql: 100 };

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

/** A due fire of a schedule: what to claim and where its next fire time moves. */
interface Fire {
  schedule: Evaluated;
  due: DueFire;
  move: NextFireMove;
}

interface Target {
  instance: InstanceRow;
  offering: OfferingRow | undefined;
}

/** What the scheduler is built from. */
export interface SchedulerDeps {
  root: Db;
  schedules: ScheduleRepository;
  catalog: CatalogRepository;
  tasks: TaskRepository;
  events: EventRepository;
  operations: Operations;
  rpo: RpoWatch;
  /**
   * The periodic duties (RPO watch, provider rounds, job history) run only while this replica
   * holds their lease; every duty runs here when absent (one process, or a test).
   */
  duties?: Duties;
  /** Told of every pass of a duty this replica ran (a metric). */
  dutyRan?: (duty: Duty) => void;
  clock: Clock;
  tickMs: number;
  log: Logger;
  /**
   * Told the clock time of every tick that completed (a test's barrier, and a metric), how long
   * the tick took, in ms of elapsed time, and how long its ask of the store took (undefined when
   * it did not ask).
   */
  ticked: (now: number, tookMs: number, askedMs: number | undefined) => void;
  /**
   * The store's count of this process's commits to the tables a tick's probe reads
   * (`PROBED_TABLES`; see `WriteWatch`). Given, a tick asks the store only when `probeNeeded`
   * says so; absent, every tick asks.
   */
  changes?: () => number;
  /** With `changes`: at most this long (elapsed ms) between two asks when nothing is known to have changed. */
  probeRefreshMs?: number;
  /** Periodic work on every provider connection (sync, prune). */
  providerRounds?: ProviderRounds;
  /**
   * Backup job schedules: each fire starts a run of its job (or is skipped while one goes); and
   * the sweep that keeps the jobs' run history within its limits.
   */
  jobs?: { service: BackupJobs; history?: JobHistorySweep };
  /** The sweep that keeps ended tasks, their progress reports and the event log within their limits. */
  history?: HistorySweep;
  /** Told of every schedule evaluated (a metric: a tick with nothing due evaluates none). */
  evaluated?: () => void;
  /** Due fires per transaction (see FIRES_PER_TRANSACTION). */
  firesPerTransaction?: number;
}

/**
 * Fires user schedules, SLA offerings and backup job schedules. Each tick reads now from the
 * clock and only the schedules whose next fire time (a column on each schedule's row, indexed)
 * has passed or is not computed yet; for each whose fire is due it claims it (a row unique per
 * schedule and fire time), moves its next fire time and makes its backup tasks in the same
 * transaction, so replicas and restarts neither double nor drop a fire. Missed fire times after
 * downtime are counted by arithmetic (domain/schedule.ts firesIn). Every replica fires. Then,
 * at the same now, the periodic duties that one replica runs for all, each while this replica
 * holds its lease: the provider rounds, the job-history sweep, the history sweep and the RPO
 * watch over the SLA offerings.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  private readonly firesPerTransaction: number;
  /** What the last probe answered; undefined until the first. */
  private seen: ProbeSeen | undefined;

  constructor(private readonly deps: SchedulerDeps) {
    this.firesPerTransaction = deps.firesPerTransaction ?? FIRES_PER_TRANSACTION.sqlite;
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.tick()
        .catch((err: unknown) => this.deps.log.warn({ err }, 'scheduler tick failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.deps.tickMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Gives up the duties this replica holds (after {@link stop}), so another takes them at once. */
  async releaseDuties(): Promise<void> {
    await this.deps.duties?.release(this.deps.clock.now());
  }

  /** Runs one pass of `duty` if this replica holds its lease at `now`; false when it does not. */
  private async duty(duty: Duty, now: number, pass: () => Promise<void>): Promise<boolean> {
    if (this.deps.duties && !(await this.deps.duties.holds(duty, now))) return false;
    await pass();
    this.deps.dutyRan?.(duty);
    return true;
  }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const started = elapsedMs();
    try {
      const now = this.deps.clock.now();
      this.deps.duties?.startTick();
      // One statement: whether anything is due, the earliest fire time and the change mark the RPO
      // watch compares; not asked again while nothing can have changed its answer. The version is
      // read before asking, so a commit during the ask is asked about at the next tick.
      const version = this.deps.changes?.();
      const asked =
        version === undefined || probeNeeded(this.seen, now, started, version, this.deps.probeRefreshMs ?? 0);
      let askedMs: number | undefined;
      if (asked) {
        const t = elapsedMs();
        this.seen = { askedAtMs: started, version: version ?? 0, ...(await this.deps.schedules.probe(now)) };
        askedMs = elapsedMs() - t;
      }
      const probe = this.seen!;
      if (probe.anyDue) await this.fireDue(now);
      const lastFires = (keys: string[]) => this.deps.schedules.lastFiresOf(keys);
      const { providerRounds, jobs } = this.deps;
      if (providerRounds) await this.duty('provider-rounds', now, () => providerRounds.tick(now, lastFires));
      if (jobs?.history) await this.duty('job-history', now, () => jobs.history!.tick(now, lastFires));
      const { history } = this.deps;
      if (history) await this.duty('history', now, () => history.tick(now));
      const { rpo, schedules } = this.deps;
      const watching = await this.duty('rpo-watch', now, () =>
        rpo.tick(now, probe.changes, () => schedules.listSlaOfferings()),
      );
      // Another replica watches meanwhile: what this one knew goes stale.
      if (!watching) rpo.forget();
      this.deps.ticked(now, elapsedMs() - started, askedMs);
    } finally {
      this.running = false;
    }
  }

  /**
   * Fires what is due at `now`: only the schedules whose next fire time (kept on their rows) has
   * passed or is not computed yet, read in bounded batches. Each is evaluated once per tick (one
   * that fails stays due for the next). Due fires are claimed and run in batches, each batch one
   * transaction; the event loop gets a turn between them.
   */
  private async fireDue(now: number): Promise<void> {
    const tried = new Set<string>();
    /** Fire arithmetic of this tick, per expression and starting point: schedules alike share it. */
    const arithmetic = new Map<string, { due: DueFire | null; next: number | null }>();
    for (;;) {
      const batch = (await this.deps.schedules.dueSchedules(now, BATCH + tried.size)).filter(
        (d) => !tried.has(`${d.kind}:${d.id}`),
      );
      if (batch.length === 0) return;
      // On SQLite each read runs on the event loop: it gets a turn between them.
      await setImmediate();
      const ids = (kind: ScheduleKind) => batch.filter((d) => d.kind === kind).map((d) => d.id);
      const [users, offerings, jobSchedules] = await Promise.all([
        this.deps.schedules.userSchedulesByIds(ids('user')),
        this.deps.schedules.offeringsByIds(ids('sla')),
        this.deps.jobs ? this.deps.schedules.jobSchedulesByIds(ids('job')) : [],
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
      await setImmediate();
      const last = await this.deps.schedules.lastFiresOf([...rows.values()].map((r) => r.key));
      await setImmediate();
      const moves: NextFireMove[] = [];
      const fires: Fire[] = [];
      for (const d of batch) {
        tried.add(`${d.kind}:${d.id}`);
        const row = rows.get(`${d.kind}:${d.id}`);
        // Gone since the batch was read (deleted, its SLA cleared): nothing to fire.
        if (!row) continue;
        this.deps.evaluated?.();
        const fire = this.evaluate(d, row, last.get(row.key), now, arithmetic);
        if ('due' in fire) fires.push(fire);
        else moves.push(fire);
      }
      // Schedules with nothing due: their next fire times move, no claim needed.
      for (let i = 0; i < moves.length; i += this.firesPerTransaction) {
        await this.deps.schedules.moveNextFires(moves.slice(i, i + this.firesPerTransaction));
        await setImmediate();
      }
      for (let i = 0; i < fires.length; i += this.firesPerTransaction) {
        await this.fireBatch(fires.slice(i, i + this.firesPerTransaction), now);
        await setImmediate();
      }
    }
  }

  /**
   * One due schedule: its fire if one passed (with the move of its next fire time), else the move
   * alone. Pure arithmetic, shared by the schedules of one expression and starting point.
   */
  private evaluate(
    d: DueSchedule,
    s: Evaluated,
    lastFire: number | undefined,
    now: number,
    arithmetic: Map<string, { due: DueFire | null; next: number | null }>,
  ): Fire | NextFireMove {
    const move = (next: number | null): NextFireMove => ({
      kind: d.kind,
      id: d.id,
      read: d.nextFireAt,
      setAt: s.version,
      next: next ?? NO_NEXT_FIRE,
    });
    const since = fireSince(lastFire, s.setAt);
    const known = `${s.timezone} ${s.cron} ${since}`;
    let times = arithmetic.get(known);
    if (!times) {
      let cal: CronCalendar;
      try {
        cal = cronCalendar(s.cron, s.timezone);
      } catch (err) {
        // A schedule stored before its expression was checked must not stop the others.
        this.deps.log.warn(
          { err, schedule: s.key, cron: s.cron, timezone: s.timezone },
          'schedule cannot be evaluated; skipped',
        );
        return move(null);
      }
      times = { due: dueFire(cal, since, now), next: nextFire(cal, Math.max(since, now)) };
      arithmetic.set(known, times);
    }
    const due = times.due;
    let next = times.next;
    if (s.job) {
      // An ended schedule, or a fire time after its end, does not run.
      const ended = this.deps.jobs!.service.ended(s.job);
      if (ended || (next !== null && s.job.endAt !== null && next > s.job.endAt)) next = null;
      if (due && (ended || (s.job.endAt !== null && due.fireAt > s.job.endAt))) return move(next);
    }
    if (!due) return move(next);
    return { schedule: s, due, move: move(next) };
  }

  /**
   * Claims a batch of fires and runs those it won, in one transaction: nothing of it is left
   * half done by a crash. When some of its fires were claimed by another replica meanwhile, or
   * one of them fails, the batch rolls back and its fires go one transaction each, so each is
   * claimed (or fails) on its own.
   */
  private async fireBatch(fires: Fire[], now: number): Promise<void> {
    let contended = false;
    const run = () =>
      retryTransient(() =>
        inRequestTransaction(this.deps.root, async () => {
          contended = false;
          const won = await this.deps.schedules.claimFires(
            fires.map((f) => ({ scheduleKey: f.schedule.key, fireAt: f.due.fireAt, missed: f.due.missed })),
            now,
          );
          if (!won) {
            contended = true;
            return false;
          }
          const mine = fires.filter((f) => won.has(f.schedule.key));
          if (mine.length === 0) return false;
          // Claimed before any task exists: whoever loses the claim does nothing (the winner
          // moves the next fire time).
          await this.deps.schedules.moveNextFires(mine.map((f) => f.move));
          await this.run(mine, now);
          return true;
        }),
      );
    if (fires.length === 1) {
      try {
        await run();
      } catch (err) {
        this.deps.log.warn(
          { err, schedule: fires[0]!.schedule.key },
          'schedule could not be fired; tried again next tick',
        );
      }
      return;
    }
    try {
      await run();
    } catch (err) {
      this.deps.log.debug({ err, fires: fires.length }, 'a batch of fires failed; firing them one at a time');
      contended = true;
    }
    if (!contended) return;
    for (const f of fires) {
      await this.fireBatch([f], now);
      await setImmediate();
    }
  }

  /** The work of claimed fires: job runs, and each target instance's backup or skip. */
  private async run(fires: Fire[], now: number): Promise<void> {
    for (const f of fires) {
      const job = f.schedule.job;
      if (!job) continue;
      const outcome = await this.deps.jobs!.service.fire(job, f.due.fireAt);
      afterCommit(() =>
        this.deps.log.info({ schedule: f.schedule.key, fireAt: f.due.fireAt, outcome }, 'job schedule fired'),
      );
    }
    const users = fires.filter((f) => f.schedule.user);
    const instances = await this.deps.catalog.instancesByIds(users.map((f) => f.schedule.user!.instanceId));
    const offerings = await this.deps.catalog.offeringsByIds(
      [...instances.values()].flatMap((i) => (i.offeringId ? [i.offeringId] : [])),
    );
    const targets: { fire: Fire; kind: 'user' | 'sla'; targets: Target[] }[] = [];
    for (const f of fires) {
      if (f.schedule.user) {
        const instance = instances.get(f.schedule.user.instanceId);
        const offering = instance?.offeringId ? offerings.get(instance.offeringId) : undefined;
        targets.push({ fire: f, kind: 'user', targets: instance ? [{ instance, offering }] : [] });
      } else if (f.schedule.offering) {
        const o = f.schedule.offering;
        // An instance whose provider runs (or may be about to run) the schedule is not Cairn's to fire.
        const of = await this.deps.catalog.instancesCairnFires(o.id);
        targets.push({ fire: f, kind: 'sla', targets: of.map((instance) => ({ instance, offering: o })) });
      }
    }
    const every = targets.flatMap((t) =>
      t.targets.map((x) => ({ ...x, priority: t.kind === 'sla' ? SLA_PRIORITY : USER_SCHEDULE_PRIORITY })),
    );
    const active = await this.deps.tasks.activeBackupsOf(every.map((t) => t.instance.id));
    const backups = await this.deps.operations.scheduledBackups(
      every.flatMap(({ instance, offering, priority }) => (offering ? [{ instance, offering, priority }] : [])),
    );
    const events: InstanceEvent[] = [];
    for (const { fire, kind, targets: of } of targets) {
      const { schedule, due } = fire;
      const fireAt = new Date(due.fireAt).toISOString();
      const priority = kind === 'sla' ? SLA_PRIORITY : USER_SCHEDULE_PRIORITY;
      let made = 0;
      for (const { instance, offering } of of) {
        const data = { schedule: schedule.key, fireAt, missed: due.missed };
        if (due.missed > 0) {
          events.push({
            tenantId: instance.tenantId,
            instanceId: instance.id,
            type: 'schedule.caught_up',
            message: `${due.missed} fire time(s) passed while no control plane ran; running once for ${fireAt}`,
            data,
          });
        }
        const plan = planFire({
          kind,
          activeBackupTaskId: active.get(instance.id),
          userSchedulesAllowed: offering?.allowUserSchedules === 1,
          quota: offering ? backups.refusal(instance, offering, priority) : undefined,
        });
        if (plan.action === 'skip' || !offering) {
          events.push({
            tenantId: instance.tenantId,
            instanceId: instance.id,
            type: 'schedule.skipped',
            message: `scheduled backup for ${fireAt} skipped: ${plan.action === 'skip' ? plan.reason : 'the instance has no offering'}`,
            data: plan.action === 'skip' && plan.quota ? { ...data, quota: plan.quota } : data,
          });
          continue;
        }
        // A later fire of this batch on the same instance finds this backup active.
        active.set(instance.id, backups.add(instance, offering, priority, data));
        made++;
      }
      afterCommit(() =>
        this.deps.log.info({ schedule: schedule.key, fireAt, missed: due.missed, tasks: made }, 'schedule fired'),
      );
    }
    await this.deps.events.forInstances(events, now);
    await backups.write();
  }
}
