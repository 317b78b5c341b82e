import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeFrame, v1, type wire } from '@cairn/proto';
import { systemClock } from '../clock.js';
import type { SpoolRecord } from '../spool/spool.js';
import { fitRecord } from './frame-fit.js';
import { ReportOutbox } from './outbox.js';
import { paceFor } from './pacing.js';

// The outbox's own fitting, counted: each report is fitted (and encoded) once a session.
vi.mock('./frame-fit.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./frame-fit.js')>();
  return { ...actual, fitRecord: vi.fn(actual.fitRecord) };
});

const rec = (seq: number): SpoolRecord => ({
  seq,
  kind: 'progress',
  body: { spoolSeq: seq, taskId: 't', attempt: 1, percent: 1 },
});
const seqOf = (e: wire.IEnvelope) => Number(e.progress?.spoolSeq);
/** A frame the outbox sent, as the message it carries (fields left at their defaults not set). */
const sentEnvelope = (frame: Uint8Array) => v1.Envelope.toObject(v1.Envelope.decode(frame)) as wire.IEnvelope;
const sentSeq = (frame: Uint8Array) => seqOf(sentEnvelope(frame));

describe('report outbox', () => {
  // The fake timers move Date.now, and the system clock with it.
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps inside a quarter of the burst, half the rate, and the unacknowledged window', () => {
    expect(paceFor({ framesPerSecond: 200, frameBurst: 2000 })).toEqual({ perSecond: 100, burst: 500, window: 500 });
    expect(paceFor({})).toBeNull();
    const sent: number[] = [];
    const box = new ReportOutbox((f) => (sent.push(sentSeq(f)), true), systemClock);
    box.start({ perSecond: 10, burst: 4, window: 3 }, [1, 2, 3, 4, 5, 6].map(rec));
    expect(sent).toEqual([1, 2, 3]); // window full
    box.acked([1, 2, 3]);
    expect(sent).toEqual([1, 2, 3, 4]); // burst spent
    vi.advanceTimersByTime(100);
    expect(sent).toEqual([1, 2, 3, 4, 5]);
    box.push(rec(7));
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([1, 2, 3, 4, 5, 6]); // window full again (4, 5, 6)
    box.acked([4, 5, 6]);
    expect(sent).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('keeps its pace across sessions: a new session does not start with a fresh burst', () => {
    const sent: number[] = [];
    const box = new ReportOutbox((f) => (sent.push(sentSeq(f)), true), systemClock);
    const pace = { perSecond: 10, burst: 2, window: 100 };
    box.start(pace, [1, 2, 3].map(rec));
    expect(sent).toEqual([1, 2]); // burst spent
    box.stop();
    box.start(pace, [3, 4].map(rec));
    expect(sent).toEqual([1, 2]);
    vi.advanceTimersByTime(100);
    expect(sent).toEqual([1, 2, 3]);
  });

  it('paces frame bytes too, and keeps at most a quarter of the byte burst unacknowledged', () => {
    const paced = paceFor({ framesPerSecond: 200, frameBurst: 2000, bytesPerSecond: 4000, byteBurst: 4000 });
    expect(paced).toEqual({
      perSecond: 100,
      burst: 500,
      window: 500,
      bytes: { perSecond: 2000, burst: 1000, window: 1000 },
    });
    const big = (seq: number): SpoolRecord => ({
      seq,
      kind: 'progress',
      body: { spoolSeq: seq, taskId: 't', attempt: 1, percent: 1, message: 'm'.repeat(300) },
    });
    const sent: number[] = [];
    const box = new ReportOutbox((f) => (sent.push(sentSeq(f)), true), systemClock);
    box.start(paced, [1, 2, 3, 4, 5].map(big));
    expect(sent).toEqual([1, 2, 3]); // ~320 bytes each: the 1,000-byte window holds three
    box.acked([1, 2, 3]);
    expect(sent).toEqual([1, 2, 3]); // the byte bucket (1,000) is spent
    vi.advanceTimersByTime(200);
    expect(sent).toEqual([1, 2, 3, 4]);
  });

  it('sends everything at once when the server announced no budget, and nothing after the session ends', () => {
    const sent: number[] = [];
    const box = new ReportOutbox((f) => (sent.push(sentSeq(f)), true), systemClock);
    box.start(null, [1, 2, 3].map(rec));
    expect(sent).toEqual([1, 2, 3]);
    box.stop();
    box.push(rec(4));
    expect(sent).toEqual([1, 2, 3]);
  });

  it('packs the reports ready together into ReportBatch frames: within the cap, the frame limit and the window', () => {
    const frames: wire.IEnvelope[] = [];
    const raw: Uint8Array[] = [];
    const box = new ReportOutbox((f) => (raw.push(f), frames.push(sentEnvelope(f)), true), systemClock);
    const seqsOf = (e: wire.IEnvelope) =>
      e.reportBatch ? e.reportBatch.reports!.map((r) => Number(r.progress?.spoolSeq)) : [seqOf(e)];
    const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => rec(from + i));
    box.start(null, range(1, 100), 1024 * 1024, true);
    // At most MAX_REPORTS_PER_BATCH (64) reports a frame, in seq order.
    expect(frames.map(seqsOf)).toEqual([range(1, 64).map((r) => r.seq), range(65, 36).map((r) => r.seq)]);
    // A single report ready on its own goes in a frame of its own.
    box.push(rec(101));
    expect(frames[2]).toEqual({ progress: rec(101).body });
    // Reports made durable together go out together.
    box.push(rec(102), rec(103));
    expect(frames.map(seqsOf).slice(3)).toEqual([[102, 103]]);
    box.stop();

    // The frame limit: every frame stays within it.
    frames.length = 0;
    raw.length = 0;
    box.start(null, range(1, 40), 200, true);
    expect(frames.flatMap(seqsOf)).toEqual(range(1, 40).map((r) => r.seq));
    expect(frames.length).toBeGreaterThan(1);
    for (const f of raw) expect(f.byteLength).toBeLessThanOrEqual(200);
    // Each frame as encoding its message gives it, byte for byte.
    for (const [i, f] of raw.entries()) expect(Buffer.from(f).equals(Buffer.from(encodeFrame(frames[i]!)))).toBe(true);
    box.stop();

    // The unacknowledged window counts reports; the frame bucket counts frames.
    frames.length = 0;
    box.start({ perSecond: 10, burst: 1, window: 5 }, range(1, 12), 1024 * 1024, true);
    expect(frames.map(seqsOf)).toEqual([[1, 2, 3, 4, 5]]);
    box.acked([1, 2, 3, 4, 5]);
    vi.advanceTimersByTime(100);
    expect(frames.map(seqsOf)).toEqual([
      [1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10],
    ]);
  });

  it('sends single frames to a control plane that takes no batches', () => {
    const frames: wire.IEnvelope[] = [];
    const box = new ReportOutbox((f) => (frames.push(sentEnvelope(f)), true), systemClock);
    box.start(null, [1, 2, 3].map(rec));
    box.push(rec(4), rec(5));
    expect(frames.map(seqOf)).toEqual([1, 2, 3, 4, 5]);
    expect(frames.some((f) => f.reportBatch)).toBe(false);
  });

  it('fits and encodes each report once a session, however often a full window or a bucket makes it wait', () => {
    const fitted = vi.mocked(fitRecord);
    const seqsOf = (e: wire.IEnvelope) =>
      e.reportBatch ? e.reportBatch.reports!.map((r) => Number(r.progress?.spoolSeq)) : [seqOf(e)];
    const sent: number[] = [];
    const box = new ReportOutbox((f) => (sent.push(...seqsOf(sentEnvelope(f))), true), systemClock);
    const records = Array.from({ length: 12 }, (_, i) => rec(i + 1));
    fitted.mockClear();
    box.start({ perSecond: 10, burst: 1, window: 2 }, records, 1024 * 1024, true);
    // Acks one at a time and the frame bucket's refills: the pump looks at the waiting reports
    // again every time, and finds each already fitted.
    for (let i = 0; i < 40 && sent.length < records.length; i++) {
      box.acked(sent.slice(-2));
      vi.advanceTimersByTime(50);
    }
    expect(sent).toEqual(records.map((r) => r.seq));
    expect(fitted.mock.calls.map(([r]) => r.seq)).toEqual(records.map((r) => r.seq));
    // A new session (its frame limit may differ) fits the reports it replays again, once each.
    box.stop();
    fitted.mockClear();
    box.start({ perSecond: 10, burst: 1, window: 2 }, records.slice(0, 5), 4096, true);
    for (let i = 0; i < 20; i++) {
      box.acked(sent.slice(-2));
      vi.advanceTimersByTime(50);
    }
    expect(fitted.mock.calls.map(([r]) => r.seq)).toEqual([1, 2, 3, 4, 5]);
  });
});
