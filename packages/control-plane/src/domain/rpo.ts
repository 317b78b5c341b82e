/**
 * The RPO watch: is an instance's newest restore point older than its offering allows? Pure; the
 * scheduler feeds it the store's facts on every tick and records each change of answer once.
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
