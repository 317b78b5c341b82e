/**
 * How fast the agent sends reports. The control plane announces each session's frame budget in
 * its welcome (a token bucket of `burst` frames refilled at `perSecond`) and closes a session
 * that goes over it. The agent keeps inside a bucket of its own of a quarter of the burst and
 * half the rate, and has at most another quarter of the burst sent but not yet acknowledged:
 * frames bunched up on the network then still fit, with room left for heartbeats.
 */
export interface Pace {
  perSecond: number;
  burst: number;
  /** Reports sent on the session and not yet acknowledged. */
  window: number;
}

/** The agent's own pace for a welcome's budget; null when the server announced none. */
export function paceFor(welcome: { framesPerSecond?: number | null; frameBurst?: number | null }): Pace | null {
  const perSecond = welcome.framesPerSecond ?? 0;
  const burst = welcome.frameBurst ?? 0;
  if (perSecond <= 0 || burst <= 0) return null;
  const share = Math.max(1, Math.floor(burst / 4));
  return { perSecond: perSecond / 2, burst: share, window: share };
}

/** A token bucket that can tell how long until its next token (pure; times are passed in). */
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

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until one token is available. */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.perSecond);
  }
}
