/**
 * Pure rules of the scheduler. Cron arithmetic is handed in as `next` (the scheduler computes it
 * with croner), so these rules decide only which fire is due and what it does.
 */

import type { QuotaExceeded, QuotaName } from './quotas.js';

/** The first fire time strictly after `afterMs`, or null when the expression has no more. */
export type NextAfter = (afterMs: number) => number | null;

export interface DueFire {
  /** The fire time to claim: the latest one not after `now`. */
  fireAt: number;
  /** Earlier fire times since `since` that passed unrun and are folded into this one. */
  missed: number;
}

/** Enough for a fire every second over eleven days of downtime. */
const MAX_SCAN = 1_000_000;

/**
 * The fire due at `now`, if any. `since` is the last claimed fire of the schedule, or the moment
 * it was set (fires before that belong to no one). After downtime, every passed fire time folds
 * into one: the latest, with the count of the others, so a stopped process catches up once and
 * not once per missed tick.
 */
export function dueFire(next: NextAfter, since: number, now: number): DueFire | null {
  let fireAt = next(since);
  if (fireAt === null || fireAt > now) return null;
  let missed = 0;
  for (let i = 0; i < MAX_SCAN; i++) {
    const later = next(fireAt);
    if (later === null || later > now) break;
    fireAt = later;
    missed++;
  }
  return { fireAt, missed };
}

/** Where a schedule's fire time counts from: its last claimed fire, else when it was last set. */
export function fireSince(lastFireAt: number | undefined, setAt: number): number {
  return lastFireAt === undefined ? setAt : Math.max(lastFireAt, setAt);
}

export type FirePlan = { action: 'backup' } | { action: 'skip'; reason: string; quota?: QuotaName };

/**
 * What one instance's share of a claimed fire does: a backup, unless its previous backup is
 * still queued or held by an agent (then the fire is skipped, never stacked), or a user schedule
 * whose offering no longer allows user schedules, or the tenant is at a per-offering quota that
 * binds the fire (`quota`: only a user schedule's, see quotaBinds; the skip names the quota).
 */
export function planFire(input: {
  kind: 'user' | 'sla';
  activeBackupTaskId: string | undefined;
  userSchedulesAllowed: boolean;
  quota?: QuotaExceeded | undefined;
}): FirePlan {
  if (input.kind === 'user' && !input.userSchedulesAllowed)
    return { action: 'skip', reason: "the instance's offering does not allow user schedules" };
  if (input.activeBackupTaskId !== undefined)
    return {
      action: 'skip',
      reason: `the previous backup (task ${input.activeBackupTaskId}) is still queued or running`,
    };
  if (input.quota !== undefined) return { action: 'skip', reason: input.quota.message, quota: input.quota.quota };
  return { action: 'backup' };
}

/** Scheduled backups of an SLA run in the provider's band, a tenant's own schedule in the tenant's (docs/api.md "Tasks"). */
export const SLA_PRIORITY = 50;
export const USER_SCHEDULE_PRIORITY = 0;

const DAY_MS = 86_400_000;

/**
 * Every schedule Cairn accepts fires at least once in any 366 days. A rarer expression (a leap
 * day, the fifth Thursday of February) makes croner scan years for each fire time, so it is
 * refused when set rather than paid for on every tick.
 */
export const MAX_FIRE_GAP_MS = 366 * DAY_MS;

/**
 * How a cron's fire times are judged: from the moment it is set, a year ahead, in a few short
 * windows, each walked fire by fire from its start until a fire more than its span after its
 * first one (or its fire limit): from the start, a day (up to 97 fires: a whole day of a schedule
 * every 15 minutes, and the wrap to the next fire day); around each change of the zone's UTC
 * offset, from two days before it (up to 4 fires: a daily schedule's 23 or 25 hours) and from two
 * hours before it (up to 26 fires: a denser one's); and at the start of each month (up to 4
 * fires), where a wait over a year shows. So the cost is bounded (at most 98 + 12 × 5 + 32 per
 * offset change fire times), whatever the expression.
 */
export const CADENCE_HORIZON_MS = 366 * DAY_MS;
const WINDOWS = {
  start: { span: DAY_MS, fires: 97 },
  aroundChange: { span: 3 * DAY_MS, fires: 4 },
  atChange: { span: 4 * 3_600_000, fires: 26 },
  month: { span: DAY_MS, fires: 4 },
};

export interface Cadence {
  /** The shortest time between two consecutive fires seen; null when fewer than two were seen. */
  shortestGapMs: number | null;
  /** The longest wait for a fire seen (from a window's start, or between fires); Infinity: none came. */
  longestWaitMs: number;
}

/**
 * The cadence of a cron from `from` (see CADENCE_HORIZON_MS). `offsetChanges`: the instants in
 * the horizon where the cron's zone changes its UTC offset (daylight saving). The walk stops early
 * once a wait exceeds MAX_FIRE_GAP_MS, or a gap below `stopBelowMs` is seen: either settles the
 * answer. `next` need find fire times only up to MAX_FIRE_GAP_MS past the horizon; null means
 * none within that.
 */
export function cadence(next: NextAfter, from: number, offsetChanges: number[] = [], stopBelowMs = 0): Cadence {
  const c: Cadence = { shortestGapMs: null, longestWaitMs: 0 };
  const windows: [number, (typeof WINDOWS)[keyof typeof WINDOWS]][] = [[from, WINDOWS.start]];
  for (const at of offsetChanges) {
    windows.push([Math.max(from, at - 2 * DAY_MS), WINDOWS.aroundChange]);
    windows.push([Math.max(from, at - 2 * 3_600_000), WINDOWS.atChange]);
  }
  const d = new Date(from);
  for (let m = 1; m <= 12; m++) windows.push([Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + m, 1), WINDOWS.month]);
  for (const [start, w] of windows) {
    let t = start;
    let first: number | undefined;
    for (let n = 0; n <= w.fires && (first === undefined || t <= first + w.span); n++) {
      const fire = next(t);
      const wait = fire === null ? Infinity : fire - t;
      c.longestWaitMs = Math.max(c.longestWaitMs, wait);
      if (fire === null || wait > MAX_FIRE_GAP_MS) return c;
      // The first wait counts from the window's start, not from a fire: no gap.
      if (first === undefined) first = fire;
      else c.shortestGapMs = c.shortestGapMs === null ? wait : Math.min(c.shortestGapMs, wait);
      if (c.shortestGapMs !== null && c.shortestGapMs < stopBelowMs) return c;
      t = fire;
    }
  }
  return c;
}

/**
 * The instants in [from, to) where `timezone` changes its offset from UTC, to the hour: the
 * offset is compared at the start of each month, and a month that differs is halved down.
 */
export function utcOffsetChanges(timezone: string, from: number, to: number): number[] {
  const format = new Intl.DateTimeFormat('en-US', { timeZone: timezone, timeZoneName: 'longOffset' });
  const offset = (t: number) => format.formatToParts(t).find((p) => p.type === 'timeZoneName')?.value;
  const changes: number[] = [];
  for (let lo = from; lo < to;) {
    let hi = Math.min(to, lo + 31 * DAY_MS);
    const next = hi;
    if (offset(lo) !== offset(hi)) {
      let a = lo;
      while (hi - a > 3_600_000) {
        const mid = a + Math.floor((hi - a) / 2);
        if (offset(mid) === offset(a)) a = mid;
        else hi = mid;
      }
      changes.push(hi);
    }
    lo = next;
  }
  return changes;
}

/** Why a cron fires too rarely to be accepted (see MAX_FIRE_GAP_MS), or undefined. */
export function rarityProblem(c: Cadence): string | undefined {
  if (c.longestWaitMs <= MAX_FIRE_GAP_MS) return undefined;
  return c.longestWaitMs === Infinity
    ? 'the expression does not fire within 366 days; a schedule must fire at least once a year'
    : `the expression leaves ${Math.floor(c.longestWaitMs / DAY_MS)} days without a fire; a schedule must fire at least once in any 366 days`;
}

/**
 * How often a tenant's schedules may fire on an offering: its `minUserScheduleIntervalS`, in
 * seconds. The default lets a small SP live with many tenants; the SP sets it per offering within
 * these bounds. SLA schedules are the SP's own and are not floored.
 */
export const USER_SCHEDULE_FLOOR_S = { default: 900, min: 60, max: 86_400 } as const;

/**
 * The floor of a job's schedules: the strictest (largest) of its instances' offerings' floors,
 * the default when none has an offering.
 */
export function jobScheduleFloor(offeringFloorsS: number[]): number {
  return offeringFloorsS.length === 0 ? USER_SCHEDULE_FLOOR_S.default : Math.max(...offeringFloorsS);
}

/** Why a cron fires more often than `floorS` allows, or undefined. */
export function floorProblem(c: Cadence, floorS: number): string | undefined {
  if (c.shortestGapMs === null || c.shortestGapMs >= floorS * 1000) return undefined;
  return `fires ${c.shortestGapMs / 1000} s apart at the closest; the floor here is one fire every ${floorS} s`;
}

/** True when `tz` is an IANA time zone this runtime knows. */
export function isKnownTimezone(tz: string): boolean {
  if (tz.length === 0 || tz.length > 100) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
