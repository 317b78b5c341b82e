import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { wire } from '@cairn/proto';
import type { Clock } from '../clock.js';
import { fsyncDir, isTempName, readJsonSync, writeFileAtomicSync } from '../state/atomic.js';

/** The report messages an agent spools, by their envelope field name. */
export interface ReportBodies {
  accepted: wire.ITaskAccepted;
  rejected: wire.ITaskRejected;
  progress: wire.IProgress;
  event: wire.IEvent;
  result: wire.IResult;
}
export type ReportKind = keyof ReportBodies;
const REPORT_KINDS: readonly ReportKind[] = ['accepted', 'rejected', 'progress', 'event', 'result'];

/** One spooled report: the message exactly as it goes on the wire, `spoolSeq` included. */
export type SpoolRecord = {
  [K in ReportKind]: { seq: number; kind: K; body: ReportBodies[K] & { spoolSeq: number } };
}[ReportKind];

/** The envelope that carries a record. */
export function recordEnvelope(record: SpoolRecord): wire.IEnvelope {
  return { [record.kind]: record.body };
}

export interface SpoolOptions {
  /** The agent's clock (a damaged ceiling file is replaced by a floor derived from it). */
  clock: Clock;
  /** How many sequence numbers to reserve with one ceiling write. */
  reserveBlock?: number;
  /** Told about record files that cannot be read (moved aside, never sent). */
  onDamaged?: (file: string, err: Error) => void;
}

const RECORD_NAME = /^(\d{16})\.json$/;
const CEILING_FILE = 'ceiling';

/**
 * The persisted ceiling; 0 for a new spool. A damaged ceiling file (only disk corruption or a
 * human can cause that, writes are atomic) must still never let a seq repeat, since the control
 * plane would drop a report under an old seq as already stored: continue from a floor derived
 * from the clock (microseconds since 1970), far above anything a spool hands out by counting
 * and still well below 2^53.
 */
function readCeiling(dir: string, { clock, onDamaged }: SpoolOptions): number {
  const file = path.join(dir, CEILING_FILE);
  let stored: unknown;
  try {
    stored = readJsonSync(file);
  } catch (err) {
    stored = err;
  }
  if (stored === undefined) return 0;
  if (typeof stored === 'number' && Number.isSafeInteger(stored) && stored >= 0) return stored;
  onDamaged?.(file, stored instanceof Error ? stored : new Error(`not a sequence number: ${JSON.stringify(stored)}`));
  return clock.now() * 1000;
}

function recordName(seq: number): string {
  return `${String(seq).padStart(16, '0')}.json`;
}

/**
 * The durable outbox: every report about a task is written here before it is sent, and deleted
 * only when the control plane acknowledges its `spool_seq`. One file per record
 * (`<stateDir>/spool/<seq>.json`), each written atomically.
 *
 * Sequence numbers are unique and increasing across restarts with a hi/lo scheme: the spool
 * persists a ceiling and hands out numbers below it without touching the disk again, so a
 * restart continues above the last ceiling even if every record was acknowledged.
 *
 * Writes are synchronous: when `append` returns, the record is on disk, and the order of seqs,
 * the order on disk and the order of `onAppend` notifications are one and the same.
 *
 * @example
 * const spool = Spool.open(stateDir, { clock });
 * const rec = spool.append('progress', { taskId, attempt, percent: 40, atMs: clock.now() });
 * // ...send recordEnvelope(rec); later, on Ack:
 * spool.ack([rec.seq]);
 */
export class Spool {
  private readonly records = new Map<number, SpoolRecord>();
  private next: number;
  private ceiling: number;
  private readonly listeners = new Set<(record: SpoolRecord) => void>();

  private constructor(
    private readonly dir: string,
    private readonly block: number,
    ceiling: number,
  ) {
    this.ceiling = ceiling;
    this.next = ceiling + 1;
  }

  /** Opens (creating if needed) the spool under `stateDir` and loads the unacknowledged records. */
  static open(stateDir: string, options: SpoolOptions): Spool {
    const dir = path.join(stateDir, 'spool');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const block = Math.max(1, Math.floor(options.reserveBlock ?? 1000));
    let ceiling = readCeiling(dir, options);
    const loaded: SpoolRecord[] = [];
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (isTempName(name)) {
        rmSync(file, { force: true }); // a write that never got renamed: it was never sent either
        continue;
      }
      const m = RECORD_NAME.exec(name);
      if (!m) continue;
      try {
        const rec = JSON.parse(readFileSync(file, 'utf8')) as SpoolRecord;
        if (rec.seq !== Number(m[1]) || !REPORT_KINDS.includes(rec.kind) || typeof rec.body !== 'object') {
          throw new Error('record does not match its file name or has no body');
        }
        loaded.push(rec);
      } catch (err) {
        renameSync(file, path.join(dir, `damaged-${name}`));
        options.onDamaged?.(file, err as Error);
      }
      // A ceiling file lost with its directory intact must still never let a seq repeat.
      ceiling = Math.max(ceiling, Number(m[1]));
    }
    const spool = new Spool(dir, block, ceiling);
    for (const rec of loaded.sort((a, b) => a.seq - b.seq)) spool.records.set(rec.seq, rec);
    return spool;
  }

  /**
   * Assigns the next `spool_seq`, writes the record durably, then tells the listeners (the
   * session sends it from there).
   */
  append<K extends ReportKind>(kind: K, body: Omit<ReportBodies[K], 'spoolSeq'>): SpoolRecord {
    const seq = this.reserve();
    const record = { seq, kind, body: { ...body, spoolSeq: seq } } as SpoolRecord;
    writeFileAtomicSync(path.join(this.dir, recordName(seq)), JSON.stringify(record));
    this.records.set(seq, record);
    for (const listener of this.listeners) listener(record);
    return record;
  }

  /** Deletes acknowledged records; unknown seqs (already deleted) are ignored. */
  ack(seqs: Iterable<number>): number {
    let removed = 0;
    for (const seq of seqs) {
      if (!this.records.delete(seq)) continue;
      rmSync(path.join(this.dir, recordName(seq)), { force: true });
      removed++;
    }
    // One directory sync for the batch: a lost deletion only means one more resend.
    if (removed > 0) fsyncDir(this.dir);
    return removed;
  }

  /** Unacknowledged records in seq order. */
  pending(): SpoolRecord[] {
    // Map iteration follows insertion order, which is seq order (loaded sorted, then appended).
    return [...this.records.values()];
  }

  get size(): number {
    return this.records.size;
  }

  /** Whether a result for this attempt is still waiting for its acknowledgement. */
  hasResult(taskId: string, attempt: number): boolean {
    for (const rec of this.records.values()) {
      if (rec.kind === 'result' && rec.body.taskId === taskId && rec.body.attempt === attempt) return true;
    }
    return false;
  }

  /** Subscribes to appended records; returns the unsubscribe function. */
  onAppend(listener: (record: SpoolRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private reserve(): number {
    if (this.next > this.ceiling) {
      const ceiling = this.next - 1 + this.block;
      writeFileAtomicSync(path.join(this.dir, CEILING_FILE), String(ceiling));
      this.ceiling = ceiling;
    }
    return this.next++;
  }
}
