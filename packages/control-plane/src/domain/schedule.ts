/**
 * Pure rules of the scheduler. Cron arithmetic is handed in (`next`, or a CronCalendar: the
 * scheduler builds both with croner), so these rules decide only which fire is due and what it does.
 */

import type { QuotaExceeded, QuotaName } from './quotas.js';

/** The first fire time strictly after `afterMs`, or null when the expression has no more. */
export type NextAfter = (afterMs: number) => number | null;

/** The next fire time of a schedule that has none (ended, or no more fire times): never due. */
export const NO_NEXT_FIRE = 8_640_000_000_000_000;

export interface DueFire {
  /** The fire time to claim: the latest one not after `now`. */
  fireAt: number;
  /** Earlier fire times since `since` that passed unrun and are folded into this one. */
  missed: number;
}

const DAY_S = 86_400;
/** Longer than any clock change of a time zone (an hour, at most two so far). */
const REPEAT_S = 3 * 3600;

/**
 * A cron expression in its time zone as the catch-up arithmetic reads it (service/cron.ts builds
 * it from croner). Within one day the fire times depend only on the second, minute and hour
 * fields; which days fire depends only on the day-of-month, month and day-of-week fields. All
 * instants and offsets are in whole seconds; a "wall second" is the zone's local clock reading
 * counted as if it were UTC, a "day" a wall-calendar day counted from 1970-01-01.
 */
export interface CronCalendar {
  /** Which hours (24), minutes (60) and seconds (60) of a day fire. */
  hours: readonly boolean[];
  minutes: readonly boolean[];
  seconds: readonly boolean[];
  /**
   * One hour, one minute, one second (croner's fixed time): a fire time that daylight saving
   * skips fires at the change instead, and one it repeats fires only the first time. Any other
   * expression skips the skipped times and fires the repeated ones twice.
   */
  fixedTime: boolean;
  /** The first day at or after `day` on which the expression fires; null when none. */
  nextFireDay(day: number): number | null;
  /** The zone's offset from UTC at instant `t`, in seconds. */
  offsetAt(t: number): number;
  /** The instants in (from, to] where the zone's offset changes, ascending. */
  offsetChanges(from: number, to: number): number[];
}

/** Fire times in a span of instants (epoch seconds). */
export interface FireSpan {
  count: number;
  first: number | null;
  last: number | null;
}

/** Counts of a day's fire times by time of day, from the hour, minute and second sets. */
function timesOfDay(cal: CronCalendar) {
  const below = (set: readonly boolean[]) => {
    const n = [0];
    for (const v of set) n.push(n[n.length - 1]! + (v ? 1 : 0));
    return n;
  };
  const [h, m, s] = [below(cal.hours), below(cal.minutes), below(cal.seconds)];
  const nM = m[60]!;
  const nS = s[60]!;
  /** Fire times of a day at or before second `x` of the day. */
  const upTo = (x: number): number => {
    if (x < 0) return 0;
    const [hx, mx, sx] = [Math.floor(x / 3600), Math.floor((x % 3600) / 60), x % 60];
    let n = h[hx]! * nM * nS;
    if (cal.hours[hx]) n += m[mx]! * nS + (cal.minutes[mx] ? s[sx + 1]! : 0);
    return n;
  };
  /** The latest fire second of a day at or before `x` (callers know there is one). */
  const lastAtMost = (x: number): number => {
    for (let t = x; t >= 0;) {
      const [hx, mx, sx] = [Math.floor(t / 3600), Math.floor((t % 3600) / 60), t % 60];
      if (!cal.hours[hx]) t = hx * 3600 - 1;
      else if (!cal.minutes[mx]) t = hx * 3600 + mx * 60 - 1;
      else if (!cal.seconds[sx]) t--;
      else return t;
    }
    throw new Error('no fire time at or before ' + x);
  };
  /** The earliest fire second of a day at or after `x` (callers know there is one). */
  const firstAtLeast = (x: number): number => {
    for (let t = x; t < DAY_S;) {
      const [hx, mx, sx] = [Math.floor(t / 3600), Math.floor((t % 3600) / 60), t % 60];
      if (!cal.hours[hx]) t = (hx + 1) * 3600;
      else if (!cal.minutes[mx]) t = hx * 3600 + (mx + 1) * 60;
      else if (!cal.seconds[sx]) t++;
      else return t;
    }
    throw new Error('no fire time at or after ' + x);
  };
  return {
    perDay: upTo(DAY_S - 1),
    between: (a: number, b: number) => upTo(b) - upTo(a - 1),
    lastAtMost,
    firstAtLeast,
  };
}

/**
 * The fire times of `cal` at instants in [from, to] (epoch seconds), counted by arithmetic: the
 * span is cut where the zone's offset changes, each piece read as a range of wall seconds, and
 * in it each day that fires (one `nextFireDay` per such day, plus one per piece) contributes the
 * count of its fire times within the range, from the hour/minute/second sets. So a span costs
 * O(fire days in it), at most one per day: a year of downtime is at most 366 day look-ups plus
 * about two per offset change, whatever the expression. `firstOnly`: stop at the first fire time (its count is then 1).
 */
export function firesIn(cal: CronCalendar, from: number, to: number, firstOnly = false): FireSpan {
  const out: FireSpan = { count: 0, first: null, last: null };
  const tod = timesOfDay(cal);
  if (to < from || tod.perDay === 0) return out;
  const add = (instant: number, n: number, first: number) => {
    if (out.first === null) out.first = first;
    out.count += n;
    out.last = instant;
  };
  const changes = cal.offsetChanges(from - 1, to);
  const starts = changes[0] === from ? changes : [from, ...changes];
  for (let i = 0; i < starts.length; i++) {
    const a = starts[i]!;
    const b = i + 1 < starts.length ? starts[i + 1]! - 1 : to;
    const o = cal.offsetAt(a);
    const p = cal.offsetAt(a - 1);
    let lo = a + o;
    if (cal.fixedTime) {
      // A repeated hour fires only the first time: its second pass is skipped, also when the span
      // starts inside it (the change that began it is then at most a few hours before).
      const c = a !== from || changes[0] === from ? a : cal.offsetChanges(a - REPEAT_S - 1, a - 1).pop();
      if (c !== undefined) lo = Math.max(lo, c + cal.offsetAt(c - 1));
    }
    if (cal.fixedTime && p < o) {
      // A fire time the change skips fires at the change, on its own day.
      const tau = tod.lastAtMost(DAY_S - 1);
      const day = Math.floor((a + o) / DAY_S);
      const wall = day * DAY_S + tau;
      if (wall >= a + p && wall < a + o && cal.nextFireDay(day) === day) {
        add(a, 1, a);
        if (firstOnly) return out;
      }
    }
    const hi = b + o;
    if (hi < lo) continue;
    const [dLo, dHi] = [Math.floor(lo / DAY_S), Math.floor(hi / DAY_S)];
    for (let d = cal.nextFireDay(dLo); d !== null && d <= dHi; d = cal.nextFireDay(d + 1)) {
      const x = d === dLo ? lo - d * DAY_S : 0;
      const y = d === dHi ? hi - d * DAY_S : DAY_S - 1;
      const n = tod.between(x, y);
      if (n === 0) continue;
      const first = d * DAY_S + tod.firstAtLeast(x) - o;
      if (firstOnly) {
        add(first, 1, first);
        return out;
      }
      add(d * DAY_S + tod.lastAtMost(y) - o, n, first);
    }
  }
  return out;
}

/**
 * The fire due at `now` (epoch ms), if any. `since` is the last claimed fire of the schedule, or
 * the moment it was set (fires before that belong to no one). After downtime, every passed fire
 * time folds into one: the latest, with the count of the others (by arithmetic, see firesIn), so
 * a stopped process catches up once and not once per missed tick.
 */
export function dueFire(cal: CronCalendar, since: number, now: number): DueFire | null {
  const span = firesIn(cal, Math.floor(since / 1000) + 1, Math.floor(now / 1000));
  return span.count === 0 ? null : { fireAt: span.last! * 1000, missed: span.count - 1 };
}

/** The first fire time strictly after `after` (epoch ms) within MAX_FIRE_GAP_MS, or null. */
export function nextFire(cal: CronCalendar, after: number): number | null {
  const from = Math.floor(after / 1000) + 1;
  const first = firesIn(cal, from, from + MAX_FIRE_GAP_MS / 1000, true).first;
  return first === null ? null : first * 1000;
}

/**
 * The instant in (from, to] (epoch seconds) where `offsetAt` changes, to the second, found by
 * halving; null when it is the same at both ends. Assumes at most one change in the span.
 */
export function offsetChangeIn(offsetAt: (t: number) => number, from: number, to: number): number | null {
  const before = offsetAt(from);
  if (offsetAt(to) === before) return null;
  let [a, b] = [from, to];
  while (b - a > 1) {
    const mid = a + Math.floor((b - a) / 2);
    if (offsetAt(mid) === before) a = mid;
    else b = mid;
  }
  return b;
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
