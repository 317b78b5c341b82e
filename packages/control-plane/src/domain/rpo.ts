/**
 * The RPO watch: is an instance's newest restore point older than its offering allows? Pure; the
 * scheduler feeds it the store's facts when they can have changed the answer, and records each
 * change of answer once.
 */
export interface RpoFacts {
  /** The offering's SLA rpoMinutes. */
  rpoMinutes: number;
  /** When the instance's newest restore point was made; null while it has none. */
  lastBackupAt: number | null;
  /**
   * When the instance came under this RPO: the later of getting its offering and the SLA being
   * set. An instance without a restore point is measured from here.
   */
  watchedSince: number;
  now: number;
}

export type RpoDecision = 'breach' | 'recover' | 'none';

/** The SLA's rpoMinutes when it is a positive integer, else null (no RPO to watch). */
export function rpoMinutesOf(sla: { rpoMinutes?: unknown } | null | undefined): number | null {
  const v = sla?.rpoMinutes;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : null;
}

/** The time the RPO is measured from: the newest restore point, or, without one, `watchedSince`. */
export function rpoReference(f: Pick<RpoFacts, 'lastBackupAt' | 'watchedSince'>): number {
  return f.lastBackupAt ?? f.watchedSince;
}

/** Breached once the reference is more than rpoMinutes old (exactly rpoMinutes is still met). */
export function isRpoBreached(f: RpoFacts): boolean {
  return f.now - rpoReference(f) > f.rpoMinutes * 60_000;
}

/**
 * What to record given what is recorded (`breached`): a new breach, a recovery, or nothing.
 *
 * @example rpoDecision({ rpoMinutes: 60, lastBackupAt: null, watchedSince: 0, now: 3_600_001 }, false) // → 'breach'
 */
export function rpoDecision(f: RpoFacts, breached: boolean): RpoDecision {
  const now = isRpoBreached(f);
  if (now && !breached) return 'breach';
  if (!now && breached) return 'recover';
  return 'none';
}

/**
 * When an instance not in breach breaches if nothing changes: it is met up to and including this
 * time, and in breach at any later one. Time alone never recovers a breach (only a newer restore
 * point or a changed SLA does).
 */
export function rpoBreachesAfter(f: Pick<RpoFacts, 'lastBackupAt' | 'watchedSince' | 'rpoMinutes'>): number {
  return rpoReference(f) + f.rpoMinutes * 60_000;
}

/** What the last full pass of the RPO watch knew (see {@link rpoPassNeeded}). */
export interface RpoPassMark {
  /** The clock time of the pass. */
  at: number;
  /** The store's change mark read before the pass began. */
  changes: number;
  /** The earliest time any watched instance not in breach breaches ({@link rpoBreachesAfter}); Infinity when none can. */
  breachesAfter: number;
}

/**
 * Whether the RPO watch must read its instances at `now`: on its first pass, when the store's
 * change mark moved (a restore point recorded or removed, an offering's SLA or an instance's
 * offering changed, a breach recorded or cleared), when an instance can have breached since, when
 * the clock went back, or when `fullPassMs` passed since the last pass (a bound, whatever the mark
 * says). Otherwise nothing it reads can have changed its answer.
 *
 * @example rpoPassNeeded({ at: 0, changes: 7, breachesAfter: 3_600_000 }, 60_000, 7, 300_000) // → false
 */
export function rpoPassNeeded(
  last: RpoPassMark | undefined,
  now: number,
  changes: number,
  fullPassMs: number,
): boolean {
  if (!last) return true;
  return changes !== last.changes || now > last.breachesAfter || now < last.at || now - last.at >= fullPassMs;
}
