import { readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../clock.js';
import type { SpoolRecord } from '../spool/spool.js';
import { journalEntrySchema } from './journal-entry.js';
import type { LogEntry } from './wal.js';

/**
 * The state files of agents before the log (one file per report in `spool/`, with a `ceiling`
 * file, and one file per task in `tasks/`): read once, on the first open of the log, and removed
 * once the log holds them.
 */
const RECORD_NAME = /^(\d{16})\.json$/;
const REPORT_KINDS = new Set(['accepted', 'rejected', 'progress', 'event', 'result']);
const isTemp = (name: string) => name.startsWith('.') && name.endsWith('.tmp');

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export interface LegacyState {
  entries: LogEntry[];
  /** Removes the files read (call once the entries are durable in the log). */
  cleanup(): void;
}

/**
 * Reads the old files into log entries: the ceiling first, then the reports in seq order, then
 * the tasks. A damaged file is reported and, when `tidy`, renamed `damaged-*` for a human (an
 * unreadable ceiling becomes a floor derived from the clock, so no seq repeats).
 */
export function readLegacyState(
  stateDir: string,
  { clock, onDamaged }: { clock: Clock; onDamaged?: (file: string, err: Error) => void },
  tidy = true,
): LegacyState {
  const spoolDir = path.join(stateDir, 'spool');
  const tasksDir = path.join(stateDir, 'tasks');
  const done: string[] = [];
  const damaged = (file: string, err: Error) => {
    if (tidy) renameSync(file, path.join(path.dirname(file), `damaged-${path.basename(file)}`));
    onDamaged?.(file, err);
  };
  let ceiling = 0;
  const records: SpoolRecord[] = [];
  for (const name of list(spoolDir)) {
    const file = path.join(spoolDir, name);
    if (isTemp(name)) {
      done.push(file); // a write that never got renamed: it was never sent either
      continue;
    }
    if (name === 'ceiling') {
      try {
        const n = JSON.parse(readFileSync(file, 'utf8')) as unknown;
        if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
          throw new Error(`not a sequence number: ${JSON.stringify(n)}`);
        ceiling = Math.max(ceiling, n);
        done.push(file);
      } catch (err) {
        damaged(file, err as Error);
        ceiling = Math.max(ceiling, clock.now() * 1000);
      }
      continue;
    }
    const m = RECORD_NAME.exec(name);
    if (!m) continue;
    ceiling = Math.max(ceiling, Number(m[1]));
    try {
      const rec = JSON.parse(readFileSync(file, 'utf8')) as SpoolRecord;
      if (rec.seq !== Number(m[1]) || !REPORT_KINDS.has(rec.kind) || typeof rec.body !== 'object') {
        throw new Error('record does not match its file name or has no body');
      }
      records.push(rec);
      done.push(file);
    } catch (err) {
      damaged(file, err as Error);
    }
  }
  const entries: LogEntry[] = [];
  if (ceiling > 0) entries.push({ t: 'ceil', n: ceiling });
  for (const rec of records.sort((a, b) => a.seq - b.seq)) entries.push({ t: 'rec', rec });
  for (const name of list(tasksDir)) {
    const file = path.join(tasksDir, name);
    if (isTemp(name)) {
      done.push(file);
      continue;
    }
    if (!name.endsWith('.json') || name.startsWith('damaged-')) continue;
    try {
      entries.push({ t: 'task', e: journalEntrySchema.parse(JSON.parse(readFileSync(file, 'utf8'))) });
      done.push(file);
    } catch (err) {
      damaged(file, err as Error);
    }
  }
  return {
    entries,
    cleanup: () => {
      for (const file of done) rmSync(file, { force: true });
      for (const dir of [spoolDir, tasksDir]) {
        try {
          rmdirSync(dir); // only when empty: damaged files stay for a human
        } catch {
          // absent, or holds damaged files
        }
      }
    },
  };
}

/** Removes old files a migration already copied into the log (it stopped before removing them). */
export function removeLegacyState(stateDir: string): void {
  for (const sub of ['spool', 'tasks']) {
    const dir = path.join(stateDir, sub);
    for (const name of list(dir)) {
      if (name.startsWith('damaged-')) continue;
      if (isTemp(name) || name.endsWith('.json') || name === 'ceiling') rmSync(path.join(dir, name), { force: true });
    }
    try {
      rmdirSync(dir);
    } catch {
      // absent, or holds damaged files
    }
  }
}
