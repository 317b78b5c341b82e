import { visibleRow, tenantScope, type Principal } from '../domain/access.js';
import { ConflictError, ForbiddenError, InputError, NotFoundError } from '../domain/errors.js';
import { fireSince } from '../domain/schedule.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { QuotaRepository } from '../store/quota-repository.js';
import type { ScheduleRepository, UpcomingRow } from '../store/schedule-repository.js';
import type { Page, PageRequest } from '../store/page.js';
import type { Sla, UserScheduleRow } from '../store/schema.js';
import { checkSchedule, nextAfter } from './cron.js';
import type { Clock } from '../clock.js';

export interface ScheduleView {
  instanceId: string;
  cron: string;
  timezone: string;
  keepLast: number;
  nextRunAt: string | null;
}

/** A next run of `GET /v1/schedules`: an instance's own schedule, an offering's SLA, or a job's schedule. */
export interface UpcomingView {
  kind: 'instance' | 'offering' | 'job';
  /** The instance, the offering, or the job schedule. */
  id: string;
  name: string;
  nextRunAt: string;
  cron: string;
  timezone: string;
  /** kind job: the job the schedule runs. */
  jobId: string | null;
}

const UPCOMING_KIND = { user: 'instance', sla: 'offering', job: 'job' } as const;

function upcomingView(r: UpcomingRow): UpcomingView {
  const sla = r.sla === null ? undefined : (JSON.parse(r.sla) as Sla);
  return {
    kind: UPCOMING_KIND[r.kind],
    id: r.id,
    name: r.name,
    nextRunAt: new Date(r.nextFireAt).toISOString(),
    cron: r.cron ?? sla?.cron ?? '',
    timezone: r.timezone ?? sla?.timezone ?? 'UTC',
    jobId: r.jobId,
  };
}

export const userScheduleKey = (instanceId: string) => `user:${instanceId}`;
export const slaScheduleKey = (offeringId: string) => `sla:${offeringId}`;
export const syncScheduleKey = (providerId: string) => `sync:${providerId}`;
export const pruneScheduleKey = (providerId: string) => `prune:${providerId}`;

/** When a schedule fires next, from the later of `now` and where its fire times count from. */
export function nextRunAt(cron: string, timezone: string, since: number, now: number): string | null {
  const t = nextAfter(cron, timezone)(Math.max(since, now));
  return t === null ? null : new Date(t).toISOString();
}

/**
 * Throws a 400 naming each bad field of a cron expression and time zone, judged from `now` (the
 * scheduler's clock): `invalid_input`, or `schedule_too_frequent` when its fires come closer
 * than `floorS` seconds.
 */
export function assertValidSchedule(
  cron: string,
  timezone: string,
  now: number,
  opts: { prefix?: string; floorS?: number } = {},
): void {
  const { problems, tooFrequent } = checkSchedule(cron, timezone, now, opts);
  if (problems.length > 0)
    throw new InputError(
      problems.map((p) => `${p.path}: ${p.message}`).join('; '),
      problems,
      tooFrequent ? 'schedule_too_frequent' : 'invalid_input',
    );
}

/** User schedules as the API sees them: policy checks, validation, next run time. */
export class Schedules {
  constructor(
    private readonly catalog: CatalogRepository,
    private readonly schedules: ScheduleRepository,
    private readonly quotas: QuotaRepository,
    /** What time it is: fire times and nextRunAt count by it. */
    private readonly clock: Clock,
  ) {}

  private async instance(p: Principal, id: string) {
    return visibleRow(p, await this.catalog.getInstance(id), 'instance', id);
  }

  async put(p: Principal, instanceId: string, body: { cron: string; timezone: string; keepLast: number }) {
    const instance = await this.instance(p, instanceId);
    if (!instance.offeringId)
      throw new ConflictError(`instance ${instanceId} has no backup offering assigned`, 'no_offering');
    const offering = await this.catalog.getOffering(instance.offeringId);
    if (!offering || offering.allowUserSchedules !== 1)
      throw new ForbiddenError(`the offering of instance ${instanceId} does not allow user schedules`);
    assertValidSchedule(body.cron, body.timezone, this.clock.now(), { floorS: offering.minUserScheduleIntervalS });
    // Only a first schedule adds to the quota; replacing one does not.
    if (!(await this.schedules.get(instanceId))) await this.quotas.reserve(instance.tenantId, 'userSchedules', 1);
    const row = await this.schedules.put({ instanceId, tenantId: instance.tenantId, ...body }, this.clock.now());
    return this.view(row);
  }

  /** The next runs of every schedule the caller's backups run on, soonest first (a tenant: its own, and its offerings' SLAs). */
  async upcoming(p: Principal, page: PageRequest): Promise<Page<UpcomingView>> {
    const rows = await this.schedules.upcoming(page, tenantScope(p));
    return { items: rows.items.map(upcomingView), nextCursor: rows.nextCursor };
  }

  async get(p: Principal, instanceId: string): Promise<ScheduleView> {
    await this.instance(p, instanceId);
    const row = await this.schedules.get(instanceId);
    if (!row) throw new NotFoundError('schedule of instance', instanceId);
    return this.view(row);
  }

  async delete(p: Principal, instanceId: string): Promise<void> {
    await this.instance(p, instanceId);
    if (!(await this.schedules.delete(instanceId))) throw new NotFoundError('schedule of instance', instanceId);
  }

  /** Drops the schedule of an instance being deleted (in the same request transaction). */
  async forget(instanceId: string): Promise<void> {
    await this.schedules.delete(instanceId);
  }

  private async view(row: UserScheduleRow): Promise<ScheduleView> {
    const since = fireSince(await this.schedules.lastFireOf(userScheduleKey(row.instanceId)), row.updatedAt);
    return {
      instanceId: row.instanceId,
      cron: row.cron,
      timezone: row.timezone,
      keepLast: row.keepLast,
      nextRunAt: nextRunAt(row.cron, row.timezone, since, this.clock.now()),
    };
  }
}
