import {
  close,
  closeSync,
  fchmod,
  fdatasync,
  fdatasyncSync,
  fsync,
  ftruncateSync,
  mkdirSync,
  open,
  openSync,
  readdirSync,
  readFileSync,
  rename,
  renameSync,
  rm,
  rmSync,
  write,
  writeSync,
  fsyncSync,
  fchmodSync,
} from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Clock } from '../clock.js';
import type { SpoolRecord } from '../spool/spool.js';
import { fsyncDir, fsyncDirAsync } from './atomic.js';
import type { JournalEntry } from './journal.js';
import { readLegacyState, removeLegacyState } from './legacy.js';

/**
 * One entry of the agent's log. The spool and the task journal are both rebuilt from these, in
 * order: a report (`rec`), acknowledged reports (`ack`), a sequence ceiling (`ceil`), a task's
 * latest attempt (`task`) and tasks forgotten by the journal's pruning (`forget`).
 */
export type LogEntry =
  | { t: 'rec'; rec: SpoolRecord }
  | { t: 'ack'; seqs: number[] }
  | { t: 'ceil'; n: number }
  | { t: 'task'; e: JournalEntry }
  | { t: 'forget'; ids: string[] };

export interface AgentLogOptions {
  /** A corrupt log (or old ceiling file) resets the seq ceiling to a floor derived from it. */
  clock: Clock;
  /** Told about a torn tail that was cut off, a corrupt segment moved aside, a damaged old file. */
  onDamaged?: (file: string, err: Error) => void;
  /** The segment is rewritten once it passes this size and twice its last compacted size (default 4 MiB). */
  compactBytes?: number;
}

/** Batch header: magic, payload length, crc32 of the payload. */
const MAGIC = 0x43574c31; // "CWL1"
const MAGIC_BYTES = Buffer.from([0x43, 0x57, 0x4c, 0x31]);
const HEADER = 12;
/** A batch larger than this is taken for a damaged length field. */
const MAX_BATCH = 256 * 1024 * 1024;
const SEGMENT = /^(\d{16})\.log$/;
const segmentName = (gen: number) => `${String(gen).padStart(16, '0')}.log`;

/** One batch as it goes to disk: header then the JSON array of its entries. */
export function encodeBatch(entries: readonly LogEntry[]): Buffer {
  const payload = Buffer.from(JSON.stringify(entries), 'utf8');
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(payload.length, 4);
  out.writeUInt32BE(crc32(payload), 8);
  payload.copy(out, HEADER);
  return out;
}

/** What reading a segment found. */
export interface DecodedSegment {
  entries: LogEntry[];
  /** Bytes that hold whole, intact batches from the start. */
  goodBytes: number;
  /**
   * `torn`: the last batch is incomplete or fails its checksum (a crash during its write: it was
   * never reported durable); `corrupt`: a bad batch with data after it (the disk or a human).
   */
  damage?: { kind: 'torn' | 'corrupt'; at: number; why: string };
}

/** Whether an intact batch starts anywhere after `from` (then a bad batch before it is no torn tail). */
function intactBatchAfter(buf: Buffer, from: number): boolean {
  for (let at = buf.indexOf(MAGIC_BYTES, from + 1); at >= 0; at = buf.indexOf(MAGIC_BYTES, at + 1)) {
    if (buf.length - at < HEADER) return false;
    const end = at + HEADER + buf.readUInt32BE(at + 4);
    if (end <= buf.length && crc32(buf.subarray(at + HEADER, end)) === buf.readUInt32BE(at + 8)) return true;
  }
  return false;
}

/** Parses a segment's bytes into entries, stopping at the first bad batch. */
export function decodeSegment(buf: Buffer): DecodedSegment {
  const entries: LogEntry[] = [];
  let at = 0;
  while (at < buf.length) {
    const left = buf.length - at;
    // Only the last write can be torn (a crash during it); a bad batch with an intact one after it
    // is corruption (the disk, or a human).
    const bad = (why: string): DecodedSegment => ({
      entries,
      goodBytes: at,
      damage: { kind: intactBatchAfter(buf, at) ? 'corrupt' : 'torn', at, why },
    });
    if (left < HEADER) return bad(`a batch header cut short (${left} of ${HEADER} bytes)`);
    if (buf.readUInt32BE(at) !== MAGIC) return bad('no batch starts here (bad magic)');
    const len = buf.readUInt32BE(at + 4);
    if (len > MAX_BATCH) return bad(`implausible batch length ${len}`);
    const end = at + HEADER + len;
    if (end > buf.length) return bad(`a batch cut short (${left - HEADER} of ${len} bytes)`);
    const payload = buf.subarray(at + HEADER, end);
    if (crc32(payload) !== buf.readUInt32BE(at + 8)) return bad('batch checksum mismatch');
    let batch: unknown;
    try {
      batch = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return bad(`batch is not JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(batch)) return bad('batch is not a list of entries');
    entries.push(...(batch as LogEntry[]));
    at = end;
  }
  return { entries, goodBytes: at };
}

function listSegments(dir: string): number[] {
  return readdirSync(dir)
    .map((name) => SEGMENT.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Writes a whole segment atomically: temp file, fsync, rename, directory fsync. */
function writeSegment(dir: string, gen: number, entries: readonly LogEntry[]): number {
  const file = path.join(dir, segmentName(gen));
  const tmp = `${file}.tmp`;
  const data = entries.length > 0 ? encodeBatch(entries) : Buffer.alloc(0);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(dir);
  return data.length;
}

/** `fn` with its Node callback made a promise. */
function call<T>(fn: (done: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

/** Entries a compaction encodes at a time: one batch each, written before the next is encoded. */
const COMPACTION_BATCH = 1000;

/**
 * {@link writeSegment} without holding the event loop: the state is written as batches of
 * {@link COMPACTION_BATCH} entries, each encoded just before its write, and the writes and fsyncs
 * run on libuv's threads. The entries must not change meanwhile (the spool's records and the
 * journal's entries are replaced, never modified). Answers the new segment's size and its file,
 * still open for appending: taken before the rename, so nothing can fail between the rename and
 * the switch to it.
 */
async function writeSegmentAsync(
  dir: string,
  gen: number,
  entries: readonly LogEntry[],
): Promise<{ fd: number; size: number }> {
  const file = path.join(dir, segmentName(gen));
  const tmp = `${file}.tmp`;
  const fd = await call<number>((done) => open(tmp, 'w', 0o600, done));
  let size = 0;
  try {
    await call<void>((done) => fchmod(fd, 0o600, (err) => done(err, undefined)));
    for (let from = 0; from < entries.length; from += COMPACTION_BATCH) {
      const data = encodeBatch(entries.slice(from, from + COMPACTION_BATCH));
      for (let at = 0; at < data.length;) {
        at += await call<number>((done) => write(fd, data, at, data.length - at, size + at, done));
      }
      size += data.length;
    }
    await call<void>((done) => fsync(fd, (err) => done(err, undefined)));
    await call<void>((done) => rename(tmp, file, (err) => done(err, undefined)));
  } catch (err) {
    await new Promise<void>((resolve) => close(fd, () => rm(tmp, { force: true }, () => resolve())));
    throw err;
  }
  await fsyncDirAsync(dir);
  return { fd, size };
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The agent's write-ahead log (`<stateDir>/wal/<generation>.log`): the spool and the task
 * journal append entries to it, and it writes them with group commit: every entry appended in
 * one event-loop turn (and any appended while the previous batch is being written) goes to disk
 * in ONE `write` and ONE `fdatasync`. A batch is framed with its length and a crc32, so a batch
 * torn by a crash is detected on open and cut off; it was never reported durable.
 *
 * Listeners ({@link onDurable}) hear about entries only after their batch is on disk, in append
 * order; {@link flushed} resolves once everything appended so far is. A batch of entries that
 * need no durability of their own (`sync: false`: acknowledgements, pruning) is written without
 * an fsync; the next fsync covers it. When the segment grows past its limit, the next batch is written as a compaction: the
 * live state (from the snapshot sources) goes into a new segment written atomically, and the old
 * one is deleted, so disk use stays bounded by what is live.
 *
 * @example
 * const log = AgentLog.open(stateDir, { clock });
 * log.append({ t: 'task', e: entry });
 * await log.flushed(); // entry is on disk
 */
export class AgentLog {
  /** Entries read at open, for the spool and the journal to rebuild themselves from. */
  readonly replayed: readonly LogEntry[];
  private fd: number;
  private size: number;
  private compactAt: number;
  private queue: LogEntry[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private writing = false;
  /** An entry in the queue needs its batch on disk (fsync); acks and pruning alone do not. */
  private syncQueued = false;
  private readonly listeners = new Set<(entries: readonly LogEntry[]) => void>();
  private readonly sources: (() => LogEntry[])[] = [];
  private gen: number;
  /** Batches written with an fsync (fdatasync), for tests and benchmarks. */
  fsyncs = 0;

  private constructor(
    private readonly dir: string,
    private readonly opts: AgentLogOptions,
    opened: { gen: number; size: number; entries: LogEntry[] },
  ) {
    this.gen = opened.gen;
    this.size = opened.size;
    this.replayed = opened.entries;
    // Not from the size at open: that counts dead bytes (acknowledged reports) too, and a limit
    // doubled from it at every start would let an agent that restarts often never compact, its
    // log, and what it reads at start, growing with its history. Past the floor, the first write
    // compacts, and the limit then follows what is live.
    this.compactAt = this.limitAfter(0);
    this.fd = openSync(path.join(dir, segmentName(this.gen)), 'r+');
  }

  /**
   * Opens (creating if needed) the log under `stateDir`: cuts off a torn tail, moves a corrupt
   * segment aside (its intact beginning is kept), and migrates the file-per-record state of older
   * agents (`spool/*.json`, `tasks/*.json`) on first open.
   */
  static open(stateDir: string, opts: AgentLogOptions): AgentLog {
    const dir = path.join(stateDir, 'wal');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(dir)) if (name.endsWith('.tmp')) rmSync(path.join(dir, name), { force: true });
    const gens = listSegments(dir);
    if (gens.length === 0) {
      // First open: the state of an older agent, if any, becomes the first segment in one step.
      const legacy = readLegacyState(stateDir, opts);
      const size = writeSegment(dir, 1, legacy.entries);
      legacy.cleanup();
      return new AgentLog(dir, opts, { gen: 1, size, entries: legacy.entries });
    }
    // A migration that stopped before removing the old files: they are in the segment already.
    removeLegacyState(stateDir);
    const gen = gens[gens.length - 1]!;
    // Older segments are left by a compaction that stopped before deleting them.
    for (const old of gens.slice(0, -1)) rmSync(path.join(dir, segmentName(old)), { force: true });
    const file = path.join(dir, segmentName(gen));
    const decoded = decodeSegment(readFileSync(file));
    if (!decoded.damage) return new AgentLog(dir, opts, { gen, size: decoded.goodBytes, entries: decoded.entries });
    const { kind, at, why } = decoded.damage;
    if (kind === 'torn') {
      const fd = openSync(file, 'r+');
      try {
        ftruncateSync(fd, decoded.goodBytes);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      opts.onDamaged?.(file, new Error(`torn tail cut off at byte ${at}: ${why}`));
      // A torn batch was never reported durable, so its seqs were never sent; but a bit flipped in
      // a durable last batch looks the same. Continue above the clock floor: no seq can repeat.
      const entries: LogEntry[] = [...decoded.entries, { t: 'ceil', n: opts.clock.now() * 1000 }];
      const log = new AgentLog(dir, opts, { gen, size: decoded.goodBytes, entries });
      log.append(entries[entries.length - 1]!);
      return log;
    }
    // Corruption in the middle: keep the segment for a human, go on from its intact beginning.
    // What followed is lost, seqs included: continue above a floor no seq handed out can reach.
    const aside = path.join(dir, `damaged-${segmentName(gen)}`);
    renameSync(file, aside);
    opts.onDamaged?.(aside, new Error(`corrupt batch at byte ${at}: ${why}; the segment was moved aside`));
    const entries: LogEntry[] = [...decoded.entries, { t: 'ceil', n: opts.clock.now() * 1000 }];
    const size = writeSegment(dir, gen + 1, entries);
    return new AgentLog(dir, opts, { gen: gen + 1, size, entries });
  }

  /**
   * Reads the log of an agent that may be running right now (for `cairn-agent status`): touches
   * nothing, stops at a damaged batch. Before the first open by a new agent, reads the old format.
   */
  static read(stateDir: string): LogEntry[] {
    const dir = path.join(stateDir, 'wal');
    let gens: number[];
    try {
      gens = listSegments(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      gens = [];
    }
    if (gens.length === 0) return readLegacyState(stateDir, { clock: { now: () => 0 } }, false).entries;
    for (const gen of gens.reverse()) {
      try {
        return decodeSegment(readFileSync(path.join(dir, segmentName(gen)))).entries;
      } catch (err) {
        // A compaction of the running agent just replaced it: the newer one is there.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return AgentLog.read(stateDir);
  }

  /**
   * Adds an entry to the batch written at the end of this event-loop turn. A batch of entries
   * appended with `sync: false` only (acknowledgements, pruning) is written without an fsync: a
   * crash may lose it, which only means a report sent again or an entry pruned again.
   */
  append(entry: LogEntry, sync = true): void {
    if (this.fd < 0) throw new Error('the agent log is closed');
    this.queue.push(entry);
    if (sync) this.syncQueued = true;
    this.schedule();
  }

  /** Resolves once everything appended so far is on disk; rejects if writing it failed. */
  flushed(): Promise<void> {
    if (this.queue.length === 0 && !this.writing) return Promise.resolve();
    if (this.fd < 0) return Promise.reject(new Error('the agent log is closed'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** Subscribes to entries made durable, batch by batch in order; returns the unsubscribe function. */
  onDurable(listener: (entries: readonly LogEntry[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Registers the live state of one owner (spool, journal), written out by a compaction. */
  addSnapshotSource(source: () => LogEntry[]): void {
    this.sources.push(source);
  }

  /** Writes what is queued synchronously and closes the file (the agent stopping). */
  close(): void {
    if (this.fd < 0) return;
    if (this.queue.length > 0 && !this.writing) {
      const batch = this.queue;
      this.queue = [];
      this.writeBatchSync(batch);
      this.settle(batch, this.waiters.splice(0));
    }
    closeSync(this.fd);
    this.fd = -1;
  }

  /** Current segment size in bytes. */
  get bytes(): number {
    return this.size;
  }

  private schedule(): void {
    if (this.scheduled || this.writing || this.fd < 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.writing || this.fd < 0) return;
    const batch = this.queue;
    const waiters = this.waiters;
    const sync = this.syncQueued || waiters.length > 0;
    this.queue = [];
    this.waiters = [];
    this.syncQueued = false;
    if (batch.length === 0) {
      for (const w of waiters) w.resolve();
      return;
    }
    this.writing = true;
    try {
      if (this.size > this.compactAt) await this.compact();
      else await this.writeBatch(batch, sync);
    } catch (err) {
      // Nothing of the batch counts: cut the file back and keep the entries for the next try.
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // the next write goes to this.size anyway
      }
      this.queue = [...batch, ...this.queue];
      this.syncQueued ||= sync;
      this.writing = false;
      for (const w of waiters) w.reject(err as Error);
      return;
    }
    this.writing = false;
    this.settle(batch, waiters);
    if (this.queue.length > 0 || this.waiters.length > 0) this.schedule();
  }

  private settle(batch: readonly LogEntry[], waiters: Waiter[]): void {
    for (const listener of this.listeners) listener(batch);
    for (const w of waiters) w.resolve();
  }

  private async writeBatch(batch: readonly LogEntry[], sync: boolean): Promise<void> {
    const buf = encodeBatch(batch);
    const fd = this.fd;
    await new Promise<void>((resolve, reject) => {
      write(fd, buf, 0, buf.length, this.size, (err, written) => {
        if (err) reject(err);
        else if (written !== buf.length)
          reject(new Error(`short write to the agent log (${written} of ${buf.length})`));
        else resolve();
      });
    });
    this.size += buf.length;
    if (!sync) return;
    await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    this.fsyncs++;
  }

  private writeBatchSync(batch: readonly LogEntry[]): void {
    const buf = encodeBatch(batch);
    writeSync(this.fd, buf, 0, buf.length, this.size);
    fdatasyncSync(this.fd);
    this.size += buf.length;
    this.fsyncs++;
  }

  /**
   * Rewrites the live state into the next segment, atomically; the batch is part of that state.
   * The state is taken before the first wait, so it is exactly what the batch leaves behind; it
   * is then encoded a batch at a time and written off the event loop (a compaction of 10,000 live
   * entries held the loop about 30 ms in one piece), and entries appended meanwhile wait in the
   * queue for the next batch, which goes to the new segment after it.
   */
  private async compact(): Promise<void> {
    const live = this.sources.flatMap((source) => source());
    const next = this.gen + 1;
    const { fd, size } = await writeSegmentAsync(this.dir, next, live);
    this.fsyncs += 2; // the new segment and its directory
    if (this.fd < 0) {
      // Closed meanwhile: the new segment holds everything; the next open removes the old one.
      closeSync(fd);
      return;
    }
    const old = path.join(this.dir, segmentName(this.gen));
    closeSync(this.fd);
    this.fd = fd;
    this.gen = next;
    this.size = size;
    this.compactAt = this.limitAfter(size);
    // An old segment left behind is removed by the next open.
    await call<void>((done) => rm(old, { force: true }, (err) => done(err, undefined))).catch(() => undefined);
  }

  private limitAfter(liveBytes: number): number {
    return Math.max(this.opts.compactBytes ?? 4 * 1024 * 1024, 2 * liveBytes);
  }
}
