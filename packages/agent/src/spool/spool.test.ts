import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../clock.js';
import { tempDir } from '../testing/wait.js';
import { AgentLog } from '../state/wal.js';
import { recordEnvelope, Spool } from './spool.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

/** The agent's clock, stopped: only a damaged log reads it. */
const clock: Clock = { now: () => 1_800_000_000_000 };

const progress = (percent: number) => ({ taskId: 'tsk_1', attempt: 1, percent, atMs: 1 });

describe('spool', () => {
  it('keeps unacknowledged records across a re-open, in seq order', async () => {
    const spool = Spool.open(dir, { clock });
    spool.append('accepted', { taskId: 'tsk_1', attempt: 1, atMs: 1 });
    for (let i = 1; i <= 12; i++) spool.append('progress', progress(i));
    spool.append('result', {
      taskId: 'tsk_1',
      attempt: 1,
      error: { code: 'X', message: 'y', retryable: false },
      atMs: 2,
    });
    await spool.flushed();

    const reopened = Spool.open(dir, { clock });
    const pending = reopened.pending();
    expect(pending.map((r) => r.seq)).toEqual(spool.pending().map((r) => r.seq));
    expect(pending.map((r) => r.kind)).toEqual(['accepted', ...Array<string>(12).fill('progress'), 'result']);
    const seqs = pending.map((r) => r.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    // The wire message carries its own seq.
    expect(pending.every((r) => r.body.spoolSeq === r.seq)).toBe(true);
    expect(recordEnvelope(pending[1]!)).toEqual({ progress: { ...progress(1), spoolSeq: pending[1]!.seq } });
  });

  it('lists the attempts whose result waits for its acknowledgement, until it is acknowledged', async () => {
    const spool = Spool.open(dir, { clock });
    const result = (taskId: string) => ({
      taskId,
      attempt: 2,
      error: { code: 'X', message: 'y', retryable: false },
      atMs: 2,
    });
    spool.append('accepted', { taskId: 'tsk_1', attempt: 2, atMs: 1 });
    expect(spool.holdsResults).toBe(false);
    const first = spool.append('result', result('tsk_1'));
    spool.append('progress', { ...progress(5), taskId: 'tsk_3' });
    spool.append('result', result('tsk_2'));
    await spool.flushed();
    expect(spool.pendingResults()).toEqual([
      { taskId: 'tsk_1', attempt: 2 },
      { taskId: 'tsk_2', attempt: 2 },
    ]);
    spool.ack([first.seq, first.seq]);
    expect(spool.pendingResults()).toEqual([{ taskId: 'tsk_2', attempt: 2 }]);
    expect(spool.holdsResults).toBe(true);
    // A re-opened spool still knows (a hello after a restart lists it).
    await spool.flushed();
    const reopened = Spool.open(dir, { clock });
    expect(reopened.pendingResults()).toEqual([{ taskId: 'tsk_2', attempt: 2 }]);
    expect(reopened.holdsResults).toBe(true);
    reopened.ack(reopened.pending().map((r) => r.seq));
    expect(reopened.holdsResults).toBe(false);
  });

  it('forgets a record only when its seq is acknowledged', async () => {
    const spool = Spool.open(dir, { clock });
    const a = spool.append('progress', progress(10));
    const b = spool.append('progress', progress(20));
    await spool.flushed();
    expect(spool.ack([a.seq, 999_999])).toBe(1);
    expect(spool.pending().map((r) => r.seq)).toEqual([b.seq]);
    await spool.flushed();
    expect(
      Spool.open(dir, { clock })
        .pending()
        .map((r) => r.seq),
    ).toEqual([b.seq]);
  });

  it('never reuses a seq after a re-open, even when everything was acknowledged', async () => {
    let last = 0;
    for (let round = 0; round < 4; round++) {
      // A tiny block forces a ceiling entry every few records.
      const spool = Spool.open(dir, { clock, reserveBlock: 3 });
      for (let i = 0; i < 5; i++) {
        const rec = spool.append('progress', progress(i));
        expect(rec.seq).toBeGreaterThan(last);
        last = rec.seq;
      }
      await spool.flushed();
      spool.ack(spool.pending().map((r) => r.seq));
      await spool.flushed();
    }
    const ceilings = AgentLog.read(dir).flatMap((e) => (e.t === 'ceil' ? [e.n] : []));
    expect(Math.max(...ceilings)).toBeGreaterThanOrEqual(last);
  });

  it('hands a record to its listeners only once it is on disk, in seq order, without a pending() copy before', async () => {
    const spool = Spool.open(dir, { clock });
    const seen: number[] = [];
    spool.onAppend((records) => {
      const onDisk = AgentLog.read(dir).flatMap((e) => (e.t === 'rec' ? [e.rec.seq] : []));
      for (const rec of records) {
        seen.push(rec.seq);
        expect(onDisk).toContain(rec.seq);
      }
    });
    const a = spool.append('event', { taskId: 't', attempt: 1, type: 'x', message: 'm', atMs: 1 });
    const b = spool.append('progress', progress(3));
    expect(seen).toEqual([]);
    // Not durable yet: a session replaying pending() now must not send it before the listener does.
    expect(spool.pending()).toEqual([]);
    await spool.flushed();
    expect(seen).toEqual([a.seq, b.seq]);
    expect(spool.pending().map((r) => r.seq)).toEqual([a.seq, b.seq]);
  });
});
