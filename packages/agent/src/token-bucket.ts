/**
 * A token bucket that can tell how long until its next tokens; pure (times are passed in). The
 * session paces the frames it sends with it, the executor the reports a task spools.
 */
export class SendBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.at = now;
  }

  private refill(now: number): void {
    if (now <= this.at) return;
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) * this.perSecond) / 1000);
    this.at = now;
  }

  /** More than the capacity waits for a full bucket (it could never be there otherwise). */
  private need(n: number): number {
    return Math.min(n, this.capacity);
  }

  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < this.need(n)) return false;
    this.tokens -= this.need(n);
    return true;
  }

  /** Milliseconds until `n` tokens are available. */
  waitMs(now: number, n = 1): number {
    this.refill(now);
    const need = this.need(n);
    return this.tokens >= need ? 0 : Math.ceil(((need - this.tokens) * 1000) / this.perSecond);
  }
}
