import type { Clock } from '../clock.js';

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
export interface HeartbeatOptions {
  intervalMs: number;
  /** Reads the time a sign of life came and how long the peer has been silent. */
  clock: Clock;
  /** Sends one heartbeat. */
  beat: () => void;
  /** The peer has been silent too long (the heartbeat has stopped). */
  silent: (silentForMs: number) => void;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private lastHeardAt: number;
  private intervalMs: number;

  constructor(private readonly opts: HeartbeatOptions) {
    this.lastHeardAt = opts.clock.now();
    this.intervalMs = opts.intervalMs;
  }

  /** The interval it beats at now. */
  get interval(): number {
    return this.intervalMs;
  }

  /**
   * Beats at `intervalMs` from now on (the control plane told a new pace): the silence allowed
   * moves with it, and what was heard so far still counts.
   */
  retime(intervalMs: number): void {
    if (intervalMs === this.intervalMs) return;
    this.intervalMs = intervalMs;
    if (this.timer) this.run();
  }

  /** Records a sign of life from the peer (any frame). */
  heard(): void {
    this.lastHeardAt = this.opts.clock.now();
  }

  start(): void {
    this.lastHeardAt = this.opts.clock.now();
    this.run();
  }

  private run(): void {
    this.stop();
    const { clock, beat, silent } = this.opts;
    const intervalMs = this.intervalMs;
    // Check twice per interval, so silence is noticed at most half an interval late.
    let tick = 0;
    this.timer = setInterval(
      () => {
        const now = clock.now();
        if (peerSilent(this.lastHeardAt, now, intervalMs)) {
          this.stop();
          silent(now - this.lastHeardAt);
          return;
        }
        if (tick++ % 2 === 0) beat();
      },
      Math.max(1, Math.floor(intervalMs / 2)),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
