/**
 * A token bucket: `capacity` tokens, refilled continuously at `perSecond`, starting full.
 * Pure arithmetic over the times it is given, so it is tested without a clock.
 *
 * A sequence of arrivals passes iff, over every interval of length d, it holds at most
 * `capacity + perSecond * d` arrivals; a sender that keeps inside a smaller bucket of its own
 * therefore never trips it.
 *
 * @example
 * const b = new TokenBucket(200, 2000, now);
 * if (!b.take(now)) closeSession();
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly perSecond: number,
    readonly capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.at = now;
  }

  private refill(now: number): void {
    if (now > this.at) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) * this.perSecond) / 1000);
      this.at = now;
    }
  }

  /** Takes `n` tokens if there are that many; false (and nothing taken) otherwise. */
  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }
}
