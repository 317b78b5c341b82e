import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../clock.js';
import { tempDir } from '../testing/wait.js';
import { recordEnvelope, Spool } from './spool.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

/** The agent's clock, stopped: only a damaged ceiling reads it. */
const NOW_MS = 1_800_000_000_000;
const clock: Clock = { now: () => NOW_MS };

const progress = (percent: number) => ({ taskId: 'tsk_1', attempt: 1, percent, atMs: 1 });

describe('spool', () => {
  it('keeps unacknowledged records across a re-open, in seq order', () => {
    const spool = Spool.open(dir, { clock });
    spool.append('accepted', { taskId: 'tsk_1', attempt: 1, atMs: 1 });
    for (let i = 1; i <= 12; i++) spool.append('progress', progress(i));
    spool.append('result', {
      taskId: 'tsk_1',
      attempt: 1,
      error: { code: 'X', message: 'y', retryable: false },
      atMs: 2,
    });

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

  it('deletes a record file only when its seq is acknowledged', () => {
    const spool = Spool.open(dir, { clock });
    const a = spool.append('progress', progress(10));
    const b = spool.append('progress', progress(20));
    const files = () => readdirSync(path.join(dir, 'spool')).filter((f) => f.endsWith('.json'));
    expect(files()).toHaveLength(2);
    expect(spool.ack([a.seq, 999_999])).toBe(1);
    expect(files()).toHaveLength(1);
    expect(
      Spool.open(dir, { clock })
        .pending()
        .map((r) => r.seq),
    ).toEqual([b.seq]);
  });

  it('never reuses a seq after a re-open, even when everything was acknowledged', () => {
    let last = 0;
    for (let round = 0; round < 4; round++) {
      // A tiny block forces a ceiling write every few records.
      const spool = Spool.open(dir, { clock, reserveBlock: 3 });
      for (let i = 0; i < 5; i++) {
        const rec = spool.append('progress', progress(i));
        expect(rec.seq).toBeGreaterThan(last);
        last = rec.seq;
      }
      spool.ack(spool.pending().map((r) => r.seq));
    }
    const ceiling = Number(readFileSync(path.join(dir, 'spool', 'ceiling'), 'utf8'));
    expect(ceiling).toBeGreaterThanOrEqual(last);
  });

  it('continues above every seq handed out when the ceiling file is damaged', () => {
    const spool = Spool.open(dir, { clock, reserveBlock: 5 });
    const rec = spool.append('progress', progress(1));
    spool.ack([rec.seq]);
    writeFileSync(path.join(dir, 'spool', 'ceiling'), 'garbage');
    const damaged: string[] = [];
    const reopened = Spool.open(dir, { clock, onDamaged: (file) => damaged.push(path.basename(file)) });
    expect(damaged).toEqual(['ceiling']);
    const next = reopened.append('progress', progress(2)).seq;
    expect(next).toBeGreaterThan(rec.seq + 5);
    // The floor is the clock in microseconds.
    expect(next).toBe(NOW_MS * 1000 + 1);
    expect(Number.isSafeInteger(next + 1_000_000_000)).toBe(true);
  });

  it('moves a damaged record aside and drops leftovers of interrupted writes', () => {
    const spool = Spool.open(dir, { clock });
    const good = spool.append('progress', progress(1));
    writeFileSync(path.join(dir, 'spool', '0000000000999999.json'), '{"seq": 999999, "kind": "progress", "bo');
    writeFileSync(path.join(dir, 'spool', '.0000000000000002.json.1.1.tmp'), 'half');
    const damaged: string[] = [];
    const reopened = Spool.open(dir, { clock, onDamaged: (file) => damaged.push(path.basename(file)) });
    expect(reopened.pending().map((r) => r.seq)).toEqual([good.seq]);
    expect(damaged).toEqual(['0000000000999999.json']);
    expect(readdirSync(path.join(dir, 'spool')).some((f) => f.endsWith('.tmp'))).toBe(false);
    expect(reopened.append('progress', progress(2)).seq).toBeGreaterThan(999_999);
  });

  it('tells listeners about each record after it is on disk', () => {
    const spool = Spool.open(dir, { clock });
    const seen: number[] = [];
    spool.onAppend((rec) => {
      seen.push(rec.seq);
      expect(readdirSync(path.join(dir, 'spool'))).toContain(`${String(rec.seq).padStart(16, '0')}.json`);
    });
    spool.append('event', { taskId: 't', attempt: 1, type: 'x', message: 'm', atMs: 1 });
    expect(seen).toHaveLength(1);
  });
});
