import type { wire } from '@cairn/proto';
import { recordEnvelope, type SpoolRecord } from '../spool/spool.js';
import { SendBucket, type Pace } from './pacing.js';

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

  constructor(private readonly send: (body: wire.IEnvelope) => boolean) {}

  /** A session was welcomed: send `pending` (the spool's unacknowledged records), then new ones. */
  start(pace: Pace | null, pending: SpoolRecord[]): void {
    this.stop();
    this.open = true;
    this.pace = pace;
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
      if (!this.send(recordEnvelope(record))) {
        this.queue.unshift(record);
        return; // the session is going away; the spool still holds everything
      }
      if (this.pace) this.inFlight.add(record.seq);
    }
  }
}
