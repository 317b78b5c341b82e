import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeReportBatchFrame,
  MAX_REPORTS_PER_BATCH,
  reportBatchFrameBytes,
} from '@cairn/proto';
import type { Clock } from '../clock.js';
import type { SpoolRecord } from '../spool/spool.js';
import { fitRecord, type Fitted } from './frame-fit.js';
import { samePace, type Pace } from './pacing.js';
import { SendBucket } from '../token-bucket.js';

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
  /** The session takes ReportBatch frames. */
  private batches = false;
  /**
   * Queued reports as fitted to this session's frame limit, each encoded once: a pump that must
   * wait (window, buckets) finds them again, and a report leaves when it is sent.
   */
  private fits = new WeakMap<SpoolRecord, Fitted>();

  constructor(
    /** Sends one encoded frame; false when the session is going away. */
    private readonly send: (frame: Uint8Array) => boolean,
    /** Paces the sends (the pace's token buckets refill by it). */
    private readonly clock: Clock,
    private readonly advice?: OutboxAdvice,
  ) {}

  /**
   * A session was welcomed: send `pending` (the spool's unacknowledged records), then new ones,
   * in frames of at most `maxFrameBytes` (what the control plane accepts); with `batches` (the
   * welcome's `accepts_report_batch`), the reports ready together share ReportBatch frames.
   */
  start(pace: Pace | null, pending: SpoolRecord[], maxFrameBytes = DEFAULT_MAX_FRAME_BYTES, batches = false): void {
    this.stop();
    this.open = true;
    if (!samePace(pace, this.pace)) {
      const now = this.clock.now();
      this.bucket = pace ? new SendBucket(pace.perSecond, pace.burst, now) : undefined;
      this.byteBucket = pace?.bytes ? new SendBucket(pace.bytes.perSecond, pace.bytes.burst, now) : undefined;
    }
    this.pace = pace;
    this.maxFrameBytes = maxFrameBytes;
    this.batches = batches;
    this.fits = new WeakMap();
    this.queue = [...pending];
    this.pump();
  }

  /** Records were spooled (one durable batch, in seq order) while a session may be up. */
  push(...records: SpoolRecord[]): void {
    if (!this.open) return; // the next session's replay picks them up from the spool
    this.queue.push(...records);
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
      const frame = this.nextFrame();
      if (!frame) continue; // a report was dropped
      const { frames, records, sizes, bytes } = frame;
      // One frame may always be in flight, however large: it fits the control plane's limit.
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
      const sent = frames.length === 1 ? frames[0]! : encodeReportBatchFrame(frames);
      if (!this.send(sent)) return; // the session is going away; the spool still holds everything
      this.queue.splice(0, records.length);
      records.forEach(({ original }) => this.fits.delete(original));
      records.forEach(({ original, cut }) => cut && this.advice?.cut(original, this.maxFrameBytes));
      if (this.pace) {
        records.forEach(({ original }, i) => this.inFlight.set(original.seq, sizes[i]!));
        this.inFlightBytes += bytes;
      }
    }
  }

  /** A report fitted to this session's frame limit, encoded once. */
  private fit(record: SpoolRecord): Fitted {
    let fitted = this.fits.get(record);
    if (!fitted) {
      fitted = fitRecord(record, this.maxFrameBytes);
      this.fits.set(record, fitted);
    }
    return fitted;
  }

  /**
   * The next frame from the head of the queue: one report, or, when the session takes batches,
   * as many of the reports waiting as fit one frame (and the unacknowledged window), each as its
   * own encoded frame (the batch frame is made of them when it is sent). Null when the head
   * report was dropped (it can never be sent).
   */
  private nextFrame(): {
    frames: Uint8Array[];
    records: { original: SpoolRecord; cut: boolean }[];
    sizes: number[];
    bytes: number;
  } | null {
    const head = this.queue[0]!;
    const fitted = this.fit(head);
    if (fitted.action === 'drop') {
      this.queue.shift();
      this.fits.delete(head);
      this.advice?.dropped(head, fitted.why);
      return null;
    }
    const frames = [fitted.frame];
    const records = [{ original: head, cut: fitted.cut }];
    const sizes = [fitted.frame.byteLength];
    const room = Math.min(MAX_REPORTS_PER_BATCH, this.pace ? this.pace.window - this.inFlight.size : Infinity);
    // A batch frame: each report as its own frame, plus its entry's tag and length (at most 6
    // bytes), plus the envelope's (at most 7): an upper bound, never over the limit.
    let batchBytes = 7 + sizes[0]! + 6;
    for (let i = 1; this.batches && i < this.queue.length && records.length < room; i++) {
      const next = this.queue[i]!;
      const f = this.fit(next);
      if (f.action === 'drop') break; // dropped when it reaches the head
      const size = f.frame.byteLength;
      if (batchBytes + size + 6 > this.maxFrameBytes) break;
      batchBytes += size + 6;
      records.push({ original: next, cut: f.cut });
      frames.push(f.frame);
      sizes.push(size);
    }
    if (records.length === 1) return { frames, records, sizes, bytes: sizes[0]! };
    const bytes = reportBatchFrameBytes(sizes);
    // What the acks give back must add up to what the frame took: the first report carries the overhead.
    sizes[0] = bytes - sizes.slice(1).reduce((a, b) => a + b, 0);
    return { frames, records, sizes, bytes };
  }
}
