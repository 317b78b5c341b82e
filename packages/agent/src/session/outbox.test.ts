import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { wire } from '@cairn/proto';
import { systemClock } from '../clock.js';
import type { SpoolRecord } from '../spool/spool.js';
import { ReportOutbox } from './outbox.js';
import { paceFor } from './pacing.js';

const rec = (seq: number): SpoolRecord => ({
  seq,
  kind: 'progress',
  body: { spoolSeq: seq, taskId: 't', attempt: 1, percent: 1 },
});
const seqOf = (e: wire.IEnvelope) => Number(e.progress?.spoolSeq);

describe('report outbox', () => {
  // The fake timers move Date.now, and the system clock with it.
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps inside a quarter of the burst, half the rate, and the unacknowledged window', () => {
    expect(paceFor({ framesPerSecond: 200, frameBurst: 2000 })).toEqual({ perSecond: 100, burst: 500, window: 500 });
    expect(paceFor({})).toBeNull();
    const sent: number[] = [];
    const box = new ReportOutbox((e) => (sent.push(seqOf(e)), true), systemClock);
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
    const box = new ReportOutbox((e) => (sent.push(seqOf(e)), true), systemClock);
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
    const box = new ReportOutbox((e) => (sent.push(seqOf(e)), true), systemClock);
    box.start(paced, [1, 2, 3, 4, 5].map(big));
    expect(sent).toEqual([1, 2, 3]); // ~320 bytes each: the 1,000-byte window holds three
    box.acked([1, 2, 3]);
    expect(sent).toEqual([1, 2, 3]); // the byte bucket (1,000) is spent
    vi.advanceTimersByTime(200);
    expect(sent).toEqual([1, 2, 3, 4]);
  });

  it('sends everything at once when the server announced no budget, and nothing after the session ends', () => {
    const sent: number[] = [];
    const box = new ReportOutbox((e) => (sent.push(seqOf(e)), true), systemClock);
    box.start(null, [1, 2, 3].map(rec));
    expect(sent).toEqual([1, 2, 3]);
    box.stop();
    box.push(rec(4));
    expect(sent).toEqual([1, 2, 3]);
  });
});
