/**
 * Pure rules of the scheduler. Cron arithmetic is handed in as `next` (the scheduler computes it
 * with croner), so these rules decide only which fire is due and what it does.
 */

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

export type FirePlan = { action: 'backup' } | { action: 'skip'; reason: string };

/**
 * What one instance's share of a claimed fire does: a backup, unless its previous backup is
 * still queued or held by an agent (then the fire is skipped, never stacked), or a user schedule
 * whose offering no longer allows user schedules.
 */
export function planFire(input: {
  kind: 'user' | 'sla';
  activeBackupTaskId: string | undefined;
  userSchedulesAllowed: boolean;
}): FirePlan {
  if (input.kind === 'user' && !input.userSchedulesAllowed)
    return { action: 'skip', reason: "the instance's offering does not allow user schedules" };
  if (input.activeBackupTaskId !== undefined)
    return {
      action: 'skip',
      reason: `the previous backup (task ${input.activeBackupTaskId}) is still queued or running`,
    };
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
 * How a cron's fire times are judged: from the moment it is set, a year ahead (twelve stretches
 * of 30.5 days), walking at most 32 fires in each stretch. A schedule firing at most 32 times a
 * stretch (a daily one, a weekly one) is walked whole, the days of both daylight saving changes
 * included; a denser one shows its shortest gap within its first 32 fires of each stretch.
 */
export const CADENCE_HORIZON_MS = 366 * DAY_MS;
const CADENCE_STRETCHES = 12;
const FIRES_PER_STRETCH = 32;

export interface Cadence {
  /** The shortest time between two consecutive fires seen; null when fewer than two were seen. */
  shortestGapMs: number | null;
  /** The longest wait for a fire seen (from the start, or between fires); Infinity: none came. */
  longestWaitMs: number;
}

/**
 * The cadence of a cron from `from` (see CADENCE_HORIZON_MS): at most 12 × 33 calls of `next`.
 * The walk stops early once a wait exceeds MAX_FIRE_GAP_MS, or a gap below `stopBelowMs` is seen:
 * either settles the answer. `next` need find fire times only up to MAX_FIRE_GAP_MS past the
 * horizon; null means none within that.
 */
export function cadence(next: NextAfter, from: number, stopBelowMs = 0): Cadence {
  let shortest: number | null = null;
  let longest = 0;
  const stretch = CADENCE_HORIZON_MS / CADENCE_STRETCHES;
  for (let i = 0; i < CADENCE_STRETCHES; i++) {
    const end = from + (i + 1) * stretch;
    let t = from + i * stretch;
    for (let n = 0; n <= FIRES_PER_STRETCH && t < end; n++) {
      const fire = next(t);
      const wait = fire === null ? Infinity : fire - t;
      longest = Math.max(longest, wait);
      if (fire === null || wait > MAX_FIRE_GAP_MS) return { shortestGapMs: shortest, longestWaitMs: longest };
      // The first wait counts from the stretch's start, not from a fire: no gap.
      if (n > 0) shortest = shortest === null ? wait : Math.min(shortest, wait);
      if (shortest !== null && shortest < stopBelowMs) return { shortestGapMs: shortest, longestWaitMs: longest };
      t = fire;
    }
  }
  return { shortestGapMs: shortest, longestWaitMs: longest };
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
