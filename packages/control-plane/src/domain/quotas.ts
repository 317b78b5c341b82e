import { managedBySp } from './job-run.js';

/**
 * Count quotas per tenant: how many of a kind of thing one tenant may have, so one tenant cannot
 * crowd out the others. The service provider may set each tenant's limit between 0 and the
 * quota's ceiling; without a setting the default applies. A limit lowered below what a tenant
 * already has keeps what exists and refuses only new things.
 */
export interface QuotaRule {
  /** What a tenant gets unless the service provider says otherwise. */
  default: number;
  /** The most the service provider may grant: what the service is built and tested to carry. */
  ceiling: number;
  /** What is counted, for documents and problem details. */
  counts: string;
}

/*
 * Defaults a small service provider can live with: far above what one customer of a few dozen
 * machines needs, far below what would let one tenant slow the scheduler (which looks at every
 * schedule on every tick) or the store for everyone. schedulesPerJob and membersPerJob keep the
 * caps a job had before quotas (20 schedules at create, 500 instances); 500 members is also the
 * ceiling, as one run writes a row per member and a page of runs reads them all.
 *
 * runningTasks is not a count of things a tenant has but of work agents hold for it at once
 * (dispatched or running); the dispatcher leaves the rest queued, nothing is refused. 20 lets a
 * customer of a few dozen machines back up a good part of them side by side while a handful of
 * tenants cannot take every slot of a small fleet; the ceiling, 1000, is the default global limit
 * (CAIRN_MAX_RUNNING_TASKS): a tenant may be granted the whole fleet, not more. Work in the service
 * provider's band (SLA fires, its jobs) counts toward it but is never held back by it.
 */
export const QUOTAS = {
  instances: { default: 1000, ceiling: 100_000, counts: "the tenant's instances" },
  userSchedules: { default: 1000, ceiling: 10_000, counts: "the tenant's instances with a user schedule" },
  jobs: { default: 100, ceiling: 10_000, counts: "the tenant's backup jobs" },
  schedulesPerJob: { default: 20, ceiling: 100, counts: 'the schedules of one backup job' },
  membersPerJob: { default: 500, ceiling: 500, counts: 'the instances of one backup job' },
  runningTasks: {
    default: 20,
    ceiling: 1000,
    counts: "the tenant's tasks held by agents at once (dispatched or running)",
  },
  /*
   * Restore points and the bytes they hold, per offering (the offering a point was made through:
   * its provider's repository is where it takes room). 10 000 points is 50 machines backed up
   * daily and kept 30 days six times over; the ceiling of 100 000 keeps the count under the
   * tenant's lock (taken before every backup the quota binds) a read of one index range. 10 TiB
   * of stored points is far beyond what dozens of machines hold; the ceiling of 1 PiB is the most
   * one tenant may fill of a repository a service provider runs.
   */
  restorePointsPerOffering: {
    default: 10_000,
    ceiling: 100_000,
    counts: "the tenant's restore points of one offering, and its backups queued or running there",
  },
  bytesPerOffering: {
    default: 10 * 2 ** 40,
    ceiling: 2 ** 50,
    counts: "the bytes (sizeBytes) of the tenant's restore points of one offering",
  },
} as const satisfies Record<string, QuotaRule>;

export type QuotaName = keyof typeof QUOTAS;
export const QUOTA_NAMES = Object.keys(QUOTAS) as QuotaName[];

/** A tenant's own limits, where the service provider set one. */
export type QuotaOverrides = Partial<Record<QuotaName, number>>;

/** Quotas counted per offering: the tenant's usage is told, and limited, for each offering apart. */
export const PER_OFFERING_QUOTAS = ['restorePointsPerOffering', 'bytesPerOffering'] as const;
export type PerOfferingQuota = (typeof PER_OFFERING_QUOTAS)[number];

export function isPerOffering(quota: QuotaName): quota is PerOfferingQuota {
  return (PER_OFFERING_QUOTAS as readonly string[]).includes(quota);
}

export function isQuotaName(name: string): name is QuotaName {
  return Object.hasOwn(QUOTAS, name);
}

/** The limit in force: the tenant's own, else the default. */
export function limitOf(quota: QuotaName, overrides: QuotaOverrides): number {
  return overrides[quota] ?? QUOTAS[quota].default;
}

export interface QuotaExceeded {
  quota: QuotaName;
  limit: number;
  used: number;
  adding: number;
  message: string;
  /** For a per-offering quota: the offering whose usage is at the limit. */
  offeringId?: string;
}

/**
 * Whether `adding` more fit beside `used` under `limit`. Adding nothing always fits, so what a
 * tenant has beyond a lowered limit stays usable.
 *
 * @example check('instances', 2, 2, 1) // → { ok: false, problem: { quota: 'instances', limit: 2, used: 2, ... } }
 */
export function check(
  quota: QuotaName,
  limit: number,
  used: number,
  adding: number,
): { ok: true } | { ok: false; problem: QuotaExceeded } {
  if (adding <= 0 || used + adding <= limit) return { ok: true };
  const message =
    `quota ${quota} exceeded: the limit is ${limit} (${QUOTAS[quota].counts}), ${used} in use, ` +
    `${adding} more asked for`;
  return { ok: false, problem: { quota, limit, used, adding, message } };
}

/** What a tenant has in one offering, as the per-offering quotas count it. */
export interface OfferingUsage {
  /** Restore points that are neither vanished nor being (or been) deleted, plus backups queued or running. */
  restorePoints: number;
  /** The sizeBytes of those restore points (a backup's size is known once it is done). */
  bytes: number;
}

/**
 * Whether the per-offering quotas bind a backup at `priority`. They bind the tenant's own work
 * (its ad-hoc backups, user schedules and jobs: priority 0-49). The service provider's work in its
 * band (50-99: SLA fires, jobs it manages, an sp-admin's ad-hoc backup) is its promise to the
 * tenant and is never refused by them; what it makes counts all the same.
 */
export function quotaBinds(priority: number): boolean {
  return !managedBySp(priority);
}

/**
 * Whether one more backup of the tenant may start in `offeringId`: not while its restore points
 * there (in-flight backups included) are at or over their limit, nor while its stored bytes there
 * are. Bytes are known only once a backup is done, so a backup that starts below the byte limit
 * may end above it; the next one is refused.
 *
 * @example checkBackupStart('ofr_1', { restorePointsPerOffering: 2 }, { restorePoints: 2, bytes: 0 }) // → refused
 */
export function checkBackupStart(
  offeringId: string,
  overrides: QuotaOverrides,
  used: OfferingUsage,
): { ok: true } | { ok: false; problem: QuotaExceeded } {
  const points = check(
    'restorePointsPerOffering',
    limitOf('restorePointsPerOffering', overrides),
    used.restorePoints,
    1,
  );
  if (!points.ok) return inOffering(points.problem, offeringId);
  const limit = limitOf('bytesPerOffering', overrides);
  if (used.bytes < limit) return { ok: true };
  const message =
    `quota bytesPerOffering exceeded: the limit is ${limit} (${QUOTAS.bytesPerOffering.counts}), ` +
    `${used.bytes} in use, so no backup starts`;
  return inOffering({ quota: 'bytesPerOffering', limit, used: used.bytes, adding: 0, message }, offeringId);
}

function inOffering(problem: QuotaExceeded, offeringId: string): { ok: false; problem: QuotaExceeded } {
  return { ok: false, problem: { ...problem, offeringId, message: `${problem.message} in offering ${offeringId}` } };
}
