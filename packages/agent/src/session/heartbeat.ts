/** The control plane counts as gone after this many heartbeat intervals of silence. */
export const SILENCE_INTERVALS = 3;

/** Has the peer been silent for longer than it may be? Pure, for tests. */
export function peerSilent(lastHeardAtMs: number, nowMs: number, intervalMs: number): boolean {
  return nowMs - lastHeardAtMs > SILENCE_INTERVALS * intervalMs;
}

/**
 * Sends a heartbeat every interval and notices when the control plane has gone quiet: it answers
 * every heartbeat, so silence for {@link SILENCE_INTERVALS} intervals means a dead or half-open
 * connection that TCP alone may not report for many minutes.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private lastHeardAt = Date.now();

  constructor(
    private readonly intervalMs: number,
    private readonly beat: () => void,
    private readonly silent: (silentForMs: number) => void,
  ) {}

  /** Records a sign of life from the peer (any frame). */
  heard(): void {
    this.lastHeardAt = Date.now();
  }

  start(): void {
    this.stop();
    this.lastHeardAt = Date.now();
    // Check twice per interval, so silence is noticed at most half an interval late.
    let tick = 0;
    this.timer = setInterval(
      () => {
        const now = Date.now();
        if (peerSilent(this.lastHeardAt, now, this.intervalMs)) {
          this.stop();
          this.silent(now - this.lastHeardAt);
          return;
        }
        if (tick++ % 2 === 0) this.beat();
      },
      Math.max(1, Math.floor(this.intervalMs / 2)),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
