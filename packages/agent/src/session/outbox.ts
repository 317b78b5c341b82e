import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, type wire } from '@cairn/proto';
import type { Clock } from '../clock.js';
import { recordEnvelope, type SpoolRecord } from '../spool/spool.js';
import { fitRecord } from './frame-fit.js';
import { samePace, SendBucket, type Pace } from './pacing.js';

/** Told about a report that was cut to fit the session's frame limit, or that can never be sent. */
export interface OutboxAdvice {
  cut(record: SpoolRecord, limit: number): void;
  /** The report is dropped for good: the caller removes it from the spool. */
  dropped(record: SpoolRecord, why: string): void;
}

/**
 * Sends spooled reports on the current session, in seq order, no faster than the agent's pace
 * (frames and bytes): a spool replayed after a long disconnection (thousands of reports) goes
 * out at the rate the control plane allows instead of in one burst that would get the session
 * closed. The pace's buckets outlive sessions, as the control plane's budget does: a new session
 * does not start with a fresh burst. Reports stay in the spool until acknowledged, so whatever
 * the outbox has not sent when a session ends goes out on the next one.
 */
export class ReportOutbox {
  private queue: SpoolRecord[] = [];
  /** Frame bytes of each report sent on this session and not yet acknowledged, by seq. */
  private readonly inFlight = new Map<number, number>();
  private inFlightBytes = 0;
  private pace: Pace | null = null;
  private bucket: SendBucket | undefined;
  private byteBucket: SendBucket | undefined;
  private open = false;
  private timer: NodeJS.Timeout | undefined;
  private maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;

  constructor(
    private readonly send: (body: wire.IEnvelope) => boolean,
    /** Paces the sends (the pace's token buckets refill by it). */
    private readonly clock: Clock,
    private readonly advice?: OutboxAdvice,
  ) {}

  /**
   * A session was welcomed: send `pending` (the spool's unacknowledged records), then new ones,
   * each in a frame of at most `maxFrameBytes` (what the control plane accepts).
   */
  start(pace: Pace | null, pending: SpoolRecord[], maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): void {
    this.stop();
    this.open = true;
    if (!samePace(pace, this.pace)) {
      const now = this.clock.now();
      this.bucket = pace ? new SendBucket(pace.perSecond, pace.burst, now) : undefined;
      this.byteBucket = pace?.bytes ? new SendBucket(pace.bytes.perSecond, pace.bytes.burst, now) : undefined;
    }
    this.pace = pace;
    this.maxFrameBytes = maxFrameBytes;
    this.queue = [...pending];
    this.pump();
  }

  /** A record was spooled while a session may be up. */
  push(record: SpoolRecord): void {
    if (!this.open) return; // the next session's replay picks it up from the spool
    this.queue.push(record);
    this.pump();
  }

  acked(seqs: Iterable<number>): void {
    for (const seq of seqs) {
      this.inFlightBytes -= this.inFlight.get(seq) ?? 0;
      this.inFlight.delete(seq);
    }
    this.pump();
  }

  /** The session ended. */
  stop(): void {
    this.open = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.inFlight.clear();
    this.inFlightBytes = 0;
  }

  /** Reports waiting to be sent on this session. */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    if (!this.open || this.timer) return;
    while (this.queue.length > 0) {
      if (this.pace && this.inFlight.size >= this.pace.window) return; // an ack resumes
      const record = this.queue[0]!;
      const fitted = fitRecord(record, this.maxFrameBytes);
      if (fitted.action === 'drop') {
        this.queue.shift();
        this.advice?.dropped(record, fitted.why);
        continue;
      }
      const envelope = recordEnvelope(fitted.record);
      const bytes = this.byteBucket ? encodeFrame(envelope).byteLength : 0;
      // One report may always be in flight, however large: its frame fits the control plane's limit.
      const byteWindow = this.pace?.bytes?.window ?? Infinity;
      if (this.inFlight.size > 0 && this.inFlightBytes + bytes > byteWindow) return; // an ack resumes
      const now = this.clock.now();
      const waitMs = Math.max(this.bucket?.waitMs(now) ?? 0, this.byteBucket?.waitMs(now, bytes) ?? 0);
      if (waitMs > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, waitMs);
        return;
      }
      this.bucket?.take(now);
      this.byteBucket?.take(now, bytes);
      if (!this.send(envelope)) return; // the session is going away; the spool still holds everything
      this.queue.shift();
      if (fitted.cut) this.advice?.cut(record, this.maxFrameBytes);
      if (this.pace) {
        this.inFlight.set(record.seq, bytes);
        this.inFlightBytes += bytes;
      }
    }
  }
}
