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
} as const satisfies Record<string, QuotaRule>;

export type QuotaName = keyof typeof QUOTAS;
export const QUOTA_NAMES = Object.keys(QUOTAS) as QuotaName[];

/** A tenant's own limits, where the service provider set one. */
export type QuotaOverrides = Partial<Record<QuotaName, number>>;

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
