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
