import type { wire } from '@cairn/proto';
import { AgentLog, type AgentLogOptions } from '../state/wal.js';

/** The report messages an agent spools, by their envelope field name. */
export interface ReportBodies {
  accepted: wire.ITaskAccepted;
  rejected: wire.ITaskRejected;
  progress: wire.IProgress;
  event: wire.IEvent;
  result: wire.IResult;
}
export type ReportKind = keyof ReportBodies;

/** One spooled report: the message exactly as it goes on the wire, `spoolSeq` included. */
export type SpoolRecord = {
  [K in ReportKind]: { seq: number; kind: K; body: ReportBodies[K] & { spoolSeq: number } };
}[ReportKind];

/** The envelope that carries a record. */
export function recordEnvelope(record: SpoolRecord): wire.IEnvelope {
  return { [record.kind]: record.body };
}

export interface SpoolOptions extends AgentLogOptions {
  /** How many sequence numbers to reserve with one ceiling entry. */
  reserveBlock?: number;
}

/**
 * The durable outbox: every report about a task is appended to the agent's log
 * ({@link AgentLog}) before it is sent, and forgotten only when the control plane acknowledges
 * its `spool_seq`.
 *
 * Sequence numbers are unique and increasing across restarts with a hi/lo scheme: the spool logs
 * a ceiling and hands out numbers below it without logging one again, so a restart continues
 * above the last ceiling even if every record was acknowledged (a ceiling entry goes into the
 * same batch as, and before, the first record above the previous one).
 *
 * `append` returns at once with the record's seq; the record is on disk when its batch is
 * ({@link flushed}), and only then do the `onAppend` listeners hear about it (the session sends
 * it from there), in seq order. Acknowledgements are logged without a write of their own: one
 * lost in a crash only means a resend, which the control plane drops by agent and seq.
 *
 * @example
 * const spool = Spool.open(stateDir, { clock });
 * const rec = spool.append('progress', { taskId, attempt, percent: 40, atMs: clock.now() });
 * // ...sent once durable; later, on Ack:
 * spool.ack([rec.seq]);
 */
export class Spool {
  private readonly records = new Map<number, SpoolRecord>();
  /** How many of {@link records} are results (kept, so asking costs nothing however long the spool). */
  private results = 0;
  private next: number;
  private ceiling = 0;
  /** Every record up to this seq is on disk. */
  private durableSeq = 0;
  private readonly listeners = new Set<(records: readonly SpoolRecord[]) => void>();
  private readonly block: number;

  constructor(
    private readonly log: AgentLog,
    options: { reserveBlock?: number } = {},
  ) {
    this.block = Math.max(1, Math.floor(options.reserveBlock ?? 1000));
    for (const entry of log.replayed) {
      if (entry.t === 'rec') {
        this.keep(entry.rec);
        this.ceiling = Math.max(this.ceiling, entry.rec.seq);
      } else if (entry.t === 'ack') {
        for (const seq of entry.seqs) {
          this.forget(seq);
          this.ceiling = Math.max(this.ceiling, seq);
        }
      } else if (entry.t === 'ceil') this.ceiling = Math.max(this.ceiling, entry.n);
    }
    this.next = this.ceiling + 1;
    this.durableSeq = this.ceiling;
    log.onDurable((entries) => {
      const records: SpoolRecord[] = [];
      for (const entry of entries) if (entry.t === 'rec') records.push(entry.rec);
      if (records.length === 0) return;
      this.durableSeq = records[records.length - 1]!.seq;
      for (const listener of this.listeners) listener(records);
    });
    log.addSnapshotSource(() => [
      { t: 'ceil', n: this.ceiling },
      ...[...this.records.values()].map((rec) => ({ t: 'rec' as const, rec })),
    ]);
  }

  /** Opens a spool on a log of its own (an agent shares one log between its spool and journal). */
  static open(stateDir: string, options: SpoolOptions): Spool {
    return new Spool(AgentLog.open(stateDir, options), options);
  }

  /** Assigns the next `spool_seq` and appends the record to the log's next batch. */
  append<K extends ReportKind>(kind: K, body: Omit<ReportBodies[K], 'spoolSeq'>): SpoolRecord {
    const seq = this.reserve();
    const record = { seq, kind, body: { ...body, spoolSeq: seq } } as SpoolRecord;
    this.log.append({ t: 'rec', rec: record });
    this.keep(record);
    return record;
  }

  /** Resolves once every record appended so far is on disk. */
  flushed(): Promise<void> {
    return this.log.flushed();
  }

  /** Forgets acknowledged records; unknown seqs (already forgotten) are ignored. */
  ack(seqs: Iterable<number>): number {
    const removed: number[] = [];
    for (const seq of seqs) if (this.forget(seq)) removed.push(seq);
    if (removed.length > 0) this.log.append({ t: 'ack', seqs: removed }, false);
    return removed.length;
  }

  /** Unacknowledged records on disk, in seq order (one still being written is sent once it is). */
  pending(): SpoolRecord[] {
    // Map iteration follows insertion order, which is seq order (replayed in order, then appended).
    return [...this.records.values()].filter((rec) => rec.seq <= this.durableSeq);
  }

  /** Whether the record of `seq` is still unacknowledged. */
  holds(seq: number): boolean {
    return this.records.has(seq);
  }

  /** Unacknowledged records, written or about to be. */
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

  /** Whether any result still waits for its acknowledgement. */
  get holdsResults(): boolean {
    return this.results > 0;
  }

  /** The attempts whose result still waits for its acknowledgement, in seq order. */
  pendingResults(): { taskId: string; attempt: number }[] {
    const out: { taskId: string; attempt: number }[] = [];
    for (const rec of this.records.values())
      if (rec.kind === 'result') out.push({ taskId: String(rec.body.taskId), attempt: Number(rec.body.attempt) });
    return out;
  }

  /** Subscribes to records made durable, one call per batch in seq order; returns the unsubscribe function. */
  onAppend(listener: (records: readonly SpoolRecord[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private keep(record: SpoolRecord): void {
    if (record.kind === 'result' && !this.records.has(record.seq)) this.results++;
    this.records.set(record.seq, record);
  }

  private forget(seq: number): boolean {
    const record = this.records.get(seq);
    if (!record) return false;
    if (record.kind === 'result') this.results--;
    this.records.delete(seq);
    return true;
  }

  private reserve(): number {
    if (this.next > this.ceiling) {
      this.ceiling = this.next - 1 + this.block;
      this.log.append({ t: 'ceil', n: this.ceiling });
    }
    return this.next++;
  }
}
