import type { Clock } from '../clock.js';

/** The control plane counts as gone after this many heartbeat intervals of silence. */
export const SILENCE_INTERVALS = 3;

/** Has the peer been silent for longer than it may be? Pure, for tests. */
export function peerSilent(lastHeardAtMs: number, nowMs: number, intervalMs: number): boolean {
  return nowMs - lastHeardAtMs > SILENCE_INTERVALS * intervalMs;
}

/**
 * Sends a heartbeat every interval and notices when the control plane has gone quiet: it answers
 * at least every second heartbeat, so silence for {@link SILENCE_INTERVALS} intervals means a dead
 * or half-open connection that TCP alone may not report for many minutes.
 *
 * While the agent holds no task it beats at the idle interval the control plane told (only
 * heartbeats renew task leases, so an idle agent may beat less often); the moment it holds one
 * again it beats at once (within half an interval) and at the interval from then on.
 */
export interface HeartbeatOptions {
  intervalMs: number;
  /** The interval while nothing is held (0: `intervalMs`; never shorter than it). */
  idleIntervalMs?: number;
  /** Whether the agent holds a task (one running, or its result not yet acknowledged); unset: always. */
  holding?: () => boolean;
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
  private idleMs: number;
  /** Ticks (half intervals) since the last beat. */
  private sinceBeat = Infinity;
  /** The last beat was an idle one. */
  private lastBeatIdle = false;
  /** The longest interval beaten at since the peer was last heard: the silence allowed is three of it. */
  private slowestSinceHeard: number;

  constructor(private readonly opts: HeartbeatOptions) {
    this.lastHeardAt = opts.clock.now();
    this.intervalMs = opts.intervalMs;
    this.idleMs = opts.idleIntervalMs ?? 0;
    this.slowestSinceHeard = this.intervalMs;
  }

  /** The interval it beats at while it holds a task. */
  get interval(): number {
    return this.intervalMs;
  }

  /** The interval it beats at while it holds none. */
  get idleInterval(): number {
    return Math.max(this.intervalMs, this.idleMs);
  }

  /**
   * Beats at `intervalMs` (and `idleIntervalMs` while idle; 0 leaves it) from now on (the control
   * plane told a new pace): the silence allowed moves with it, and what was heard so far still counts.
   */
  retime(intervalMs: number, idleIntervalMs = 0): void {
    if (idleIntervalMs > 0) this.idleMs = idleIntervalMs;
    if (intervalMs === this.intervalMs) return;
    this.intervalMs = intervalMs;
    if (this.timer) this.run();
  }

  /** Records a sign of life from the peer (any frame). */
  heard(): void {
    this.lastHeardAt = this.opts.clock.now();
    this.slowestSinceHeard = this.current();
  }

  start(): void {
    this.lastHeardAt = this.opts.clock.now();
    this.slowestSinceHeard = this.current();
    this.sinceBeat = Infinity;
    this.run();
  }

  /** The interval in effect now: idle or not. */
  private current(): number {
    return this.idle() ? this.idleInterval : this.intervalMs;
  }

  private idle(): boolean {
    return !(this.opts.holding?.() ?? true);
  }

  private run(): void {
    this.stop();
    const { clock, beat, silent } = this.opts;
    // Check twice per interval, so silence is noticed at most half an interval late.
    const tickMs = Math.max(1, Math.floor(this.intervalMs / 2));
    this.timer = setInterval(() => {
      const now = clock.now();
      const idle = this.idle();
      const currentMs = idle ? this.idleInterval : this.intervalMs;
      if (peerSilent(this.lastHeardAt, now, Math.max(this.slowestSinceHeard, currentMs))) {
        this.stop();
        silent(now - this.lastHeardAt);
        return;
      }
      this.sinceBeat++;
      // A beat every interval (two ticks, or as many as the idle interval spans), and one at once
      // when a task is taken after an idle beat: its lease is renewed from then on.
      const dueTicks = Math.max(1, Math.round(currentMs / tickMs));
      if (this.sinceBeat < dueTicks && !(this.lastBeatIdle && !idle)) return;
      this.sinceBeat = 0;
      this.lastBeatIdle = idle;
      this.slowestSinceHeard = Math.max(this.slowestSinceHeard, currentMs);
      beat();
    }, tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
