/**
 * Periodic duties that one replica of a shared database runs for all: the RPO watch, the provider
 * rounds (periodic sync and prune), the job-history sweep and the history sweep (ended tasks,
 * progress reports, events). Schedule fires are not among them:
 * every replica fires, and each fire is claimed once by its own row.
 */
export const DUTIES = ['rpo-watch', 'provider-rounds', 'job-history', 'history'] as const;
export type Duty = (typeof DUTIES)[number];

/** A duty's lease as stored: who holds it and until when (the scheduler's clock). */
export interface DutyLease {
  holder: string;
  expiresAt: number;
}

/** What a replica may do about a duty's lease at `now`. */
export type LeaseDecision =
  /** Nobody holds it, or its holder let it run out: this replica may take it. */
  | { action: 'take' }
  /** This replica holds it: it renews it and runs the duty. */
  | { action: 'renew' }
  /** Another replica holds it until `until`: this one leaves the duty alone. */
  | { action: 'leave'; holder: string; until: number };

/**
 * Whether `me` may hold a duty whose lease reads `lease` at `now`. The store makes the same
 * decision in one conditional write (holder = me, or expired), so two replicas that decide
 * `take` together cannot both win. A lease that expires exactly at `now` has run out. Pure.
 *
 * @example leaseDecision({ holder: 'b', expiresAt: 20 }, 'a', 10) // → { action: 'leave', holder: 'b', until: 20 }
 */
export function leaseDecision(lease: DutyLease | undefined, me: string, now: number): LeaseDecision {
  if (!lease || lease.expiresAt <= now) return { action: 'take' };
  if (lease.holder === me) return { action: 'renew' };
  return { action: 'leave', holder: lease.holder, until: lease.expiresAt };
}

/**
 * How long a lease runs from its renewal: long enough to ride out a slow tick or two (a holder
 * renews every {@link renewalInterval}), short enough that another replica takes over soon after
 * the holder dies.
 *
 * @example leaseExpiry(1000, 15_000) // → 16000
 */
export function leaseExpiry(now: number, leaseMs: number): number {
  return now + leaseMs;
}

/**
 * How long a holder runs a duty on a renewal before it writes the next: a third of the lease, so
 * two renewals can come late or fail before the lease runs out. Between renewals the holder asks
 * the store nothing (each renewal is a write, and a tick comes every second or faster).
 *
 * @example renewalInterval(15_000) // → 5000
 */
export function renewalInterval(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 3));
}
