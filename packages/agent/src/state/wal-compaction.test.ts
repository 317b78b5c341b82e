import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../clock.js';
import { Spool } from '../spool/spool.js';
import { tempDir, waitFor } from '../testing/wait.js';
import { TaskJournal } from './journal.js';
import { AgentLog } from './wal.js';

/**
 * The compaction's fsync of its new segment, held by the test: `hold` makes the next `fsync`
 * wait until the test calls `release` (with an error to make it fail). Batches are made durable
 * with `fdatasync`, so only a compaction (its segment, then its directory) reaches `fsync`.
 */
const gate = vi.hoisted(() => ({
  hold: false,
  release: undefined as undefined | ((err?: NodeJS.ErrnoException) => void),
}));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const fsync = (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => {
    if (!gate.hold) return fs.fsync(fd, done);
    gate.hold = false;
    gate.release = (err) => {
      gate.release = undefined;
      if (err) done(err);
      else fs.fsync(fd, done);
    };
  };
  return { ...fs, fsync, default: { ...fs, fsync } };
});

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  gate.hold = false;
  gate.release = undefined;
});
afterEach(() => cleanup());

const clock: Clock = { now: () => 1_800_000_000_000 };
const LIMIT = 4096;
const progress = (percent: number) => ({ taskId: 'tsk_1', attempt: 1, percent, atMs: 1 });
const running = (taskId: string) =>
  ({ taskId, attempt: 1, operation: 'backup', plugin: 'p', state: 'running', startedAt: 1 }) as const;

function openState() {
  const log = AgentLog.open(dir, { clock, compactBytes: LIMIT });
  return { log, spool: new Spool(log), journal: new TaskJournal(log.replayed, log) };
}

const segments = () => readdirSync(path.join(dir, 'wal')).filter((name) => name.endsWith('.log'));

/**
 * A log filled with acknowledged reports up to its limit (one event and one journal entry left
 * live), then one more report whose batch compacts, held at the compaction's fsync. Answers the
 * live event's seq, the report's, and the flush of its batch.
 */
async function compactionHeld() {
  const state = openState();
  const kept = state.spool.append('event', { taskId: 'tsk_1', attempt: 1, type: 'x', message: 'kept', atMs: 1 });
  state.journal.record(running('tsk_1'));
  while (state.log.bytes <= LIMIT) {
    const rec = state.spool.append('progress', progress(1));
    await state.spool.flushed();
    state.spool.ack([rec.seq]);
  }
  gate.hold = true;
  const before = state.spool.append('progress', progress(2));
  const flushed = state.spool.flushed();
  // The compaction waits on its fsync, and this test goes on running meanwhile.
  await waitFor(() => gate.release, 'the compaction to reach its fsync');
  return { ...state, kept: kept.seq, before: before.seq, flushed };
}

describe('agent log compaction', () => {
  it('leaves the event loop free while it writes, and what is appended meanwhile follows it', async () => {
    const state = await compactionHeld();
    const during = state.spool.append('progress', progress(3));
    state.journal.record(running('tsk_2'));
    const flushedDuring = state.spool.flushed();
    let settled = false;
    void flushedDuring.then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    expect(segments()).toEqual(['0000000000000001.log']);
    gate.release!();
    await state.flushed;
    await flushedDuring;
    expect(segments()).toEqual(['0000000000000002.log']);
    expect(state.log.bytes).toBeLessThan(LIMIT);
    state.log.close();

    const reopened = openState();
    expect(reopened.spool.pending().map((r) => r.seq)).toEqual([state.kept, state.before, during.seq]);
    expect(reopened.journal.all().map((e) => e.taskId)).toEqual(['tsk_1', 'tsk_2']);
    expect(reopened.spool.append('progress', progress(4)).seq).toBeGreaterThan(during.seq);
    reopened.log.close();
  });

  it('that fails keeps the old segment in use and loses nothing; the next batch compacts again', async () => {
    const state = await compactionHeld();
    gate.release!(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    await expect(state.flushed).rejects.toThrow('EIO');
    expect(segments()).toEqual(['0000000000000001.log']);
    expect(readdirSync(path.join(dir, 'wal')).filter((name) => name.endsWith('.tmp'))).toEqual([]);

    const after = state.spool.append('progress', progress(3));
    await state.spool.flushed();
    expect(segments()).toEqual(['0000000000000002.log']);
    state.log.close();

    const reopened = openState();
    expect(reopened.spool.pending().map((r) => r.seq)).toEqual([state.kept, state.before, after.seq]);
    expect(reopened.journal.all().map((e) => e.taskId)).toEqual(['tsk_1']);
    reopened.log.close();
  });

  it('closed while it writes, still ends in the new segment, which the next open reads', async () => {
    const state = await compactionHeld();
    state.log.close();
    gate.release!();
    await state.flushed;
    expect(segments()).toEqual(['0000000000000001.log', '0000000000000002.log']);

    const reopened = openState();
    expect(segments()).toEqual(['0000000000000002.log']);
    expect(reopened.spool.pending().map((r) => r.seq)).toEqual([state.kept, state.before]);
    reopened.log.close();
  });
});
