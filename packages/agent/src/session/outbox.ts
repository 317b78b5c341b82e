import { DEFAULT_MAX_FRAME_BYTES, type wire } from '@cairn/proto';
import { recordEnvelope, type SpoolRecord } from '../spool/spool.js';
import { fitRecord } from './frame-fit.js';
import { SendBucket, type Pace } from './pacing.js';

/** Told about a report that was cut to fit the session's frame limit, or that can never be sent. */
export interface OutboxAdvice {
  cut(record: SpoolRecord, limit: number): void;
  /** The report is dropped for good: the caller removes it from the spool. */
  dropped(record: SpoolRecord, why: string): void;
}

/**
 * Sends spooled reports on the current session, in seq order, no faster than the session's
 * pace: a spool replayed after a long disconnection (thousands of reports) goes out at the rate
 * the control plane allows instead of in one burst that would get the session closed. Reports
 * stay in the spool until acknowledged, so whatever the outbox has not sent when a session ends
 * goes out on the next one.
 */
export class ReportOutbox {
  private queue: SpoolRecord[] = [];
  private readonly inFlight = new Set<number>();
  private pace: Pace | null = null;
  private bucket: SendBucket | undefined;
  private open = false;
  private timer: NodeJS.Timeout | undefined;
  private maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;

  constructor(
    private readonly send: (body: wire.IEnvelope) => boolean,
    private readonly advice?: OutboxAdvice,
  ) {}

  /**
   * A session was welcomed: send `pending` (the spool's unacknowledged records), then new ones,
   * each in a frame of at most `maxFrameBytes` (what the control plane accepts).
   */
  start(pace: Pace | null, pending: SpoolRecord[], maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): void {
    this.stop();
    this.open = true;
    this.pace = pace;
    this.maxFrameBytes = maxFrameBytes;
    this.bucket = pace ? new SendBucket(pace.perSecond, pace.burst, Date.now()) : undefined;
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
    for (const seq of seqs) this.inFlight.delete(seq);
    this.pump();
  }

  /** The session ended. */
  stop(): void {
    this.open = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.inFlight.clear();
  }

  /** Reports waiting to be sent on this session. */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    if (!this.open || this.timer) return;
    while (this.queue.length > 0) {
      if (this.pace && this.inFlight.size >= this.pace.window) return; // an ack resumes
      const now = Date.now();
      if (this.bucket && !this.bucket.take(now)) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, this.bucket.waitMs(now));
        return;
      }
      const record = this.queue.shift()!;
      const fitted = fitRecord(record, this.maxFrameBytes);
      if (fitted.action === 'drop') {
        this.advice?.dropped(record, fitted.why);
        continue;
      }
      if (!this.send(recordEnvelope(fitted.record))) {
        this.queue.unshift(record);
        return; // the session is going away; the spool still holds everything
      }
      if (fitted.cut) this.advice?.cut(record, this.maxFrameBytes);
      if (this.pace) this.inFlight.add(record.seq);
    }
  }
}
