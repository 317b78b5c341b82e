import {
  DUTIES,
  leaseDecision,
  leaseExpiry,
  renewalInterval,
  type Duty,
  type DutyLease,
} from '../domain/duty-lease.js';
import type { Logger } from '../logger.js';
import type { DutyLeaseRepository } from '../store/duty-lease-repository.js';

/** What the duty leases of one replica are built from. */
export interface DutiesDeps {
  leases: DutyLeaseRepository;
  /** This replica's name in the leases: unique per process. */
  holder: string;
  /** How long a lease runs from each renewal (CAIRN_DUTY_LEASE_MS). */
  leaseMs: number;
  log: Logger;
  /** Told each time this replica takes a duty up or gives it up (a metric). */
  changed?: (duty: Duty, held: boolean) => void;
}

/**
 * The periodic duties this replica runs for all replicas of its database: each tick asks
 * {@link holds} before a duty. A holder writes its lease's renewal only every
 * {@link renewalInterval} (a third of the lease) and asks nothing in between; a replica holding
 * none reads the leases once per tick and tries to take only a duty whose lease has run out (or
 * was released). The leases only spare the other replicas the work: what a duty writes stays
 * conditional on its own rows (a fire claimed once, a breach raised once), so a holder that
 * stalls past its lease and a new holder that overlap it still write each thing once.
 */
export class Duties {
  /** The duties this replica holds, each with the time its next renewal is written. */
  private readonly renewAt = new Map<Duty, number>();
  /** The leases as read during this tick: one read serves every duty of a tick. */
  private looked?: Promise<Map<Duty, DutyLease>>;
  /** Set at a clean stop: a tick still under way takes or renews nothing after the release. */
  private released = false;

  constructor(private readonly deps: DutiesDeps) {}

  /** Whether this replica runs `duty` at `now`: it holds a lease it renewed recently, or took or renewed it now. */
  async holds(duty: Duty, now: number): Promise<boolean> {
    if (this.released) return false;
    const renewAt = this.renewAt.get(duty);
    if (renewAt !== undefined && now >= renewAt - renewalInterval(this.deps.leaseMs) && now < renewAt) return true;
    let holds = false;
    try {
      const free =
        renewAt !== undefined ||
        leaseDecision((await this.leases()).get(duty), this.deps.holder, now).action !== 'leave';
      if (free) holds = await this.deps.leases.hold(duty, this.deps.holder, now, leaseExpiry(now, this.deps.leaseMs));
    } catch (err) {
      // The store is away: this replica does not know it still holds the duty, so it stops.
      this.deps.log.warn({ err, duty }, 'duty lease could not be renewed');
    }
    // Stopped while the renewal was on its way: give back what it took.
    if (this.released) {
      if (holds) await this.deps.leases.release(duty, this.deps.holder, now).catch(() => undefined);
      return false;
    }
    const held = this.renewAt.has(duty);
    if (holds) this.renewAt.set(duty, now + renewalInterval(this.deps.leaseMs));
    else this.renewAt.delete(duty);
    if (holds !== held) {
      this.deps.log.info({ duty, holder: this.deps.holder }, holds ? 'duty taken up' : 'duty left to another replica');
      this.deps.changed?.(duty, holds);
    }
    return holds;
  }

  /** Starts a tick: the leases are read again (at most once) before the next duty not held. */
  startTick(): void {
    this.looked = undefined;
  }

  private leases(): Promise<Map<Duty, DutyLease>> {
    return (this.looked ??= this.deps.leases.readAll());
  }

  /** Gives up every duty held, at a clean stop, so another replica takes them at its next tick. */
  async release(now: number): Promise<void> {
    this.released = true;
    for (const duty of DUTIES) {
      if (!this.renewAt.has(duty)) continue;
      try {
        await this.deps.leases.release(duty, this.deps.holder, now);
        this.renewAt.delete(duty);
        this.deps.changed?.(duty, false);
      } catch (err) {
        this.deps.log.warn({ err, duty }, 'duty lease could not be released; it runs out');
      }
    }
  }
}
