import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../clock.js';
import { Spool } from '../spool/spool.js';
import { tempDir, waitFor } from '../testing/wait.js';
import { TaskJournal } from './journal.js';
import { AgentLog, decodeSegment, encodeBatch, type LogEntry } from './wal.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

const NOW_MS = 1_800_000_000_000;
const clock: Clock = { now: () => NOW_MS };
const SEGMENT = '0000000000000001.log';
const segmentFile = (stateDir = dir, name = SEGMENT) => path.join(stateDir, 'wal', name);

const progress = (percent: number) => ({ taskId: 'tsk_1', attempt: 1, percent, atMs: 1 });
const running = (taskId: string) =>
  ({ taskId, attempt: 1, operation: 'backup', plugin: 'p', state: 'running', startedAt: 1 }) as const;

/** Opens a spool and a journal over one log, the way the agent does. */
function openState(stateDir: string, damaged: string[] = [], compactBytes?: number) {
  const log = AgentLog.open(stateDir, {
    clock,
    onDamaged: (file, err) => damaged.push(`${path.basename(file)}: ${err.message}`),
    ...(compactBytes === undefined ? {} : { compactBytes }),
  });
  return { log, spool: new Spool(log), journal: new TaskJournal(log.replayed, log) };
}

/** A log of two batches; returns the bytes and where the second batch starts. */
async function twoBatches(): Promise<{ bytes: Buffer; secondAt: number; firstSeqs: number[] }> {
  const { log, spool } = openState(dir);
  const first = [
    spool.append('accepted', { taskId: 'tsk_1', attempt: 1, atMs: 1 }),
    spool.append('progress', progress(1)),
  ];
  await spool.flushed();
  const secondAt = log.bytes;
  spool.append('progress', progress(2));
  spool.append('result', {
    taskId: 'tsk_1',
    attempt: 1,
    error: { code: 'X', message: 'y', retryable: false },
    atMs: 2,
  });
  await spool.flushed();
  log.close();
  return { bytes: readFileSync(segmentFile()), secondAt, firstSeqs: first.map((r) => r.seq) };
}

/** A fresh state directory holding `bytes` as its only segment. */
let copies = 0;
function stateWith(bytes: Buffer): string {
  const other = path.join(dir, 'copies', String(++copies));
  mkdirSync(path.join(other, 'wal'), { recursive: true });
  writeFileSync(segmentFile(other), bytes);
  return other;
}

describe('agent log', () => {
  it('writes everything appended in one turn with one write and one fsync', async () => {
    const { log, spool, journal } = openState(dir);
    const before = log.fsyncs;
    journal.record(running('tsk_1'));
    for (let i = 0; i < 50; i++) spool.append('progress', progress(i));
    await journal.durable();
    expect(log.fsyncs - before).toBe(1);
    const written = log.bytes;
    // An acknowledgement is written at the end of the turn too, but without an fsync.
    spool.ack([spool.pending()[0]!.seq]);
    await waitFor(() => log.bytes > written, 'the ack to be written');
    expect(log.fsyncs - before).toBe(1);
    expect(decodeSegment(readFileSync(segmentFile())).entries.some((e) => e.t === 'ack')).toBe(true);
    spool.append('progress', progress(99));
    await spool.flushed();
    expect(log.fsyncs - before).toBe(2);
  });

  it('cuts off a torn last batch at every byte offset, keeping every batch before it', async () => {
    const { bytes, secondAt, firstSeqs } = await twoBatches();
    for (let cut = secondAt; cut < bytes.length; cut++) {
      const other = stateWith(bytes.subarray(0, cut));
      const damaged: string[] = [];
      const { spool, log } = openState(other, damaged);
      expect(spool.pending().map((r) => r.seq)).toEqual(firstSeqs);
      expect(damaged).toHaveLength(cut === secondAt ? 0 : 1);
      if (cut > secondAt) expect(damaged[0]).toMatch(/torn tail cut off at byte \d+/);
      expect(statSync(segmentFile(other)).size).toBe(secondAt);
      // The log goes on from there.
      const next = spool.append('progress', progress(7));
      await spool.flushed();
      log.close();
      expect(
        openState(other)
          .spool.pending()
          .map((r) => r.seq),
      ).toEqual([...firstSeqs, next.seq]);
    }
  });

  it('never crashes on a flipped bit: keeps the intact batches before it and reports the damage', async () => {
    const { bytes, secondAt, firstSeqs } = await twoBatches();
    const allSeqs = decodeSegment(bytes).entries.flatMap((e) => (e.t === 'rec' ? [e.rec.seq] : []));
    for (let at = 0; at < bytes.length; at += 3) {
      const flipped = Buffer.from(bytes);
      flipped[at] = flipped[at]! ^ (1 << (at % 8));
      const other = stateWith(flipped);
      const damaged: string[] = [];
      const { spool } = openState(other, damaged);
      expect(damaged).toHaveLength(1);
      const seqs = spool.pending().map((r) => r.seq);
      expect(seqs).toEqual(at < secondAt ? [] : firstSeqs);
      // Whatever was lost, a seq handed out from now on is above every seq the log ever held.
      expect(spool.append('progress', progress(1)).seq).toBeGreaterThan(Math.max(...allSeqs));
      if (damaged[0]!.includes('corrupt')) {
        expect(readdirSync(path.join(other, 'wal'))).toContain(`damaged-${SEGMENT}`);
      }
      await spool.flushed();
    }
  });

  it('moves a segment corrupt in the middle aside and continues above a clock floor', async () => {
    const { bytes, secondAt } = await twoBatches();
    const flipped = Buffer.from(bytes);
    flipped[secondAt - 2] = flipped[secondAt - 2]! ^ 0x10; // inside the first batch's payload
    const other = stateWith(flipped);
    const damaged: string[] = [];
    const { spool } = openState(other, damaged);
    expect(damaged).toEqual([
      expect.stringMatching(/^damaged-0+1\.log: corrupt batch at byte 0: batch checksum mismatch/),
    ]);
    expect(readdirSync(path.join(other, 'wal')).sort()).toEqual(['0000000000000002.log', `damaged-${SEGMENT}`]);
    expect(spool.append('progress', progress(1)).seq).toBe(NOW_MS * 1000 + 1);
  });

  it('compacts: disk use stays bounded by what is unacknowledged, and nothing live is lost', async () => {
    const { log, spool, journal } = openState(dir, [], 4096);
    const live: number[] = [];
    let last = 0;
    for (let round = 0; round < 200; round++) {
      const recs = [
        spool.append('progress', progress(round)),
        spool.append('event', { taskId: `t${round}`, attempt: 1, type: 'x', message: 'm'.repeat(40), atMs: 1 }),
      ];
      journal.record(running(`t${round % 5}`));
      for (const r of recs) expect(r.seq).toBeGreaterThan(last);
      last = recs[1]!.seq;
      await spool.flushed();
      // Every tenth round leaves its event unacknowledged.
      spool.ack([recs[0]!.seq, ...(round % 10 === 0 ? [] : [recs[1]!.seq])]);
      if (round % 10 === 0) live.push(recs[1]!.seq);
      expect(log.bytes).toBeLessThan(3 * 4096);
    }
    await spool.flushed();
    log.close();
    const names = readdirSync(path.join(dir, 'wal'));
    expect(names).toHaveLength(1);
    expect(names[0]).not.toBe(SEGMENT);
    const reopened = openState(dir);
    expect(reopened.spool.pending().map((r) => r.seq)).toEqual(live);
    expect(reopened.journal.all()).toHaveLength(5);
    expect(reopened.spool.append('progress', progress(1)).seq).toBeGreaterThan(last);
  });

  it('compacts across restarts: an agent restarted often does not grow its log (nor what it reads at start)', async () => {
    // Each incarnation writes a little past the limit's half, all of it acknowledged, then stops.
    // The limit must not follow the segment's size at open (dead bytes), or it doubles each time.
    const sizes: number[] = [];
    let last = 0;
    for (let incarnation = 0; incarnation < 12; incarnation++) {
      const { log, spool } = openState(dir, [], 4096);
      for (let round = 0; round < 12; round++) {
        const rec = spool.append('event', {
          taskId: `t${round}`,
          attempt: 1,
          type: 'x',
          message: 'm'.repeat(60),
          atMs: 1,
        });
        expect(rec.seq).toBeGreaterThan(last);
        last = rec.seq;
        await spool.flushed();
        spool.ack([rec.seq]);
      }
      await spool.flushed();
      log.close();
      sizes.push(statSync(path.join(dir, 'wal', readdirSync(path.join(dir, 'wal'))[0]!)).size);
    }
    expect(Math.max(...sizes), sizes.join(' ')).toBeLessThan(3 * 4096);
    expect(openState(dir).spool.pending()).toEqual([]);
  });

  it('migrates the file-per-record state of an older agent on first open, and removes it', () => {
    const spoolDir = path.join(dir, 'spool');
    const tasksDir = path.join(dir, 'tasks');
    mkdirSync(spoolDir);
    mkdirSync(tasksDir);
    const rec = (seq: number) => ({ seq, kind: 'progress', body: { ...progress(seq), spoolSeq: seq } });
    writeFileSync(path.join(spoolDir, 'ceiling'), '2000');
    writeFileSync(path.join(spoolDir, '0000000000001002.json'), JSON.stringify(rec(1002)));
    writeFileSync(path.join(spoolDir, '0000000000001001.json'), JSON.stringify(rec(1001)));
    writeFileSync(path.join(spoolDir, '0000000000001003.json'), '{"seq": 1003, "kind": "pro');
    writeFileSync(path.join(spoolDir, '.0000000000001004.json.1.1.tmp'), 'half');
    writeFileSync(path.join(tasksDir, 'tsk_a.json'), JSON.stringify(running('tsk_a')));
    writeFileSync(
      path.join(tasksDir, 'h-abc.json'),
      JSON.stringify({ ...running('weird/id'), state: 'finished', endedAt: 3 }),
    );

    const damaged: string[] = [];
    const { spool, journal } = openState(dir, damaged);
    expect(spool.pending().map((r) => r.seq)).toEqual([1001, 1002]);
    expect(spool.pending()[0]!.body).toMatchObject({ percent: 1001, spoolSeq: 1001 });
    expect(journal.running().map((e) => e.taskId)).toEqual(['tsk_a']);
    expect(journal.get('weird/id')).toMatchObject({ state: 'finished' });
    expect(spool.append('progress', progress(1)).seq).toBe(2001);
    expect(damaged).toEqual([expect.stringMatching(/^0+1003\.json: /)]);
    // The damaged file stays for a human; everything migrated is gone.
    expect(readdirSync(spoolDir)).toEqual(['damaged-0000000000001003.json']);
    expect(existsSync(tasksDir)).toBe(false);
  });

  it('does not migrate twice when a migration stopped before removing the old files', async () => {
    const spoolDir = path.join(dir, 'spool');
    mkdirSync(spoolDir);
    const rec = { seq: 5, kind: 'progress', body: { ...progress(5), spoolSeq: 5 } };
    writeFileSync(path.join(spoolDir, '0000000000000005.json'), JSON.stringify(rec));
    const first = openState(dir);
    first.spool.ack([5]);
    await first.spool.flushed();
    first.log.close();
    // As if the process had died between writing the segment and removing the old file.
    mkdirSync(spoolDir);
    writeFileSync(path.join(spoolDir, '0000000000000005.json'), JSON.stringify(rec));
    const again = openState(dir);
    expect(again.spool.pending()).toEqual([]);
    expect(existsSync(spoolDir)).toBe(false);
  });

  it('reads a running agent’s journal without touching its files', async () => {
    const { log, journal } = openState(dir);
    journal.record(running('tsk_r'));
    await journal.durable();
    log.close();
    const torn = Buffer.concat([
      readFileSync(segmentFile()),
      encodeBatch([{ t: 'task', e: running('tsk_x') }]).subarray(0, 9),
    ]);
    writeFileSync(segmentFile(), torn);
    expect(
      TaskJournal.read(dir)
        .running()
        .map((e) => e.taskId),
    ).toEqual(['tsk_r']);
    expect(readFileSync(segmentFile())).toEqual(torn);
    // An agent never started with the log yet: its old files are read, and left alone.
    const { dir: old, cleanup: done } = tempDir();
    try {
      mkdirSync(path.join(old, 'tasks'));
      writeFileSync(path.join(old, 'tasks', 'tsk_o.json'), JSON.stringify(running('tsk_o')));
      expect(
        TaskJournal.read(old)
          .running()
          .map((e) => e.taskId),
      ).toEqual(['tsk_o']);
      expect(existsSync(path.join(old, 'wal'))).toBe(false);
      expect(TaskJournal.read(path.join(old, 'nowhere')).all()).toEqual([]);
    } finally {
      done();
    }
  });

  it('rejects a flush and keeps the entries when the log is closed', async () => {
    const { log, spool } = openState(dir);
    log.close();
    expect(() => spool.append('progress', progress(1))).toThrow('the agent log is closed');
    const entries: LogEntry[] = AgentLog.read(dir);
    expect(entries).toEqual([]);
  });
});
