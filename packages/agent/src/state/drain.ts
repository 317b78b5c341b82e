import { unwatchFile, watchFile } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { readJsonSync, writeFileAtomicSync } from './atomic.js';

/** Name of the local drain file inside the state directory: what an operator set on the host. */
export const DRAIN_FILE = 'drain.json';
/** Name of the file holding the drain the control plane last pushed (maintenance of a scope covering this agent). */
export const SERVER_DRAIN_FILE = 'server-drain.json';

/** The message shown when maintenance is on and nobody wrote a better one. */
export const DEFAULT_DRAIN_MESSAGE = 'Service provider is currently undergoing scheduled maintenance.';

const drainSchema = z.object({
  enabled: z.boolean(),
  message: z.string().default(''),
  /**
   * Who set it: an operator on the host (`local`, in drain.json) or the control plane (`server`,
   * in server-drain.json). Agents before 0.2 kept the control plane's drain in drain.json too,
   * marked `server`; such a record is read as the control plane's.
   */
  source: z.enum(['local', 'server']).default('local'),
  updatedAt: z.string().default(''),
});

/** One maintenance drain as stored on the agent's own disk. */
export type DrainRecord = z.infer<typeof drainSchema>;

type Source = DrainRecord['source'];

const notDraining = (source: Source): DrainRecord => ({ enabled: false, message: '', source, updatedAt: '' });

export function drainPath(stateDir: string): string {
  return path.join(stateDir, DRAIN_FILE);
}

export function serverDrainPath(stateDir: string): string {
  return path.join(stateDir, SERVER_DRAIN_FILE);
}

/** The message to use for a drain record: its own, or the default. */
export function drainMessage(record: Pick<DrainRecord, 'message'>): string {
  return record.message.trim() === '' ? DEFAULT_DRAIN_MESSAGE : record.message;
}

/**
 * Reads one drain file. A missing file means "not draining". A damaged file means "draining"
 * with the default message: refusing backups by mistake is recoverable, running them during a
 * maintenance window may not be.
 */
function readDrainFile(file: string, source: Source): DrainRecord | undefined {
  let raw: unknown;
  try {
    raw = readJsonSync(file);
  } catch {
    return { enabled: true, message: DEFAULT_DRAIN_MESSAGE, source, updatedAt: '' };
  }
  if (raw === undefined) return undefined;
  const parsed = drainSchema.safeParse(raw);
  if (!parsed.success) return { enabled: true, message: DEFAULT_DRAIN_MESSAGE, source, updatedAt: '' };
  return parsed.data;
}

/** The drain an operator set on this host (`cairn-agent drain`); "not draining" when none. */
export function readDrain(stateDir: string): DrainRecord {
  const record = readDrainFile(drainPath(stateDir), 'local');
  // A record an older agent wrote for the control plane is not the operator's.
  if (!record || record.source === 'server') return notDraining('local');
  return record;
}

/** The drain the control plane last pushed; "not draining" when it never sent one. */
export function readServerDrain(stateDir: string): DrainRecord {
  const own = readDrainFile(serverDrainPath(stateDir), 'server');
  if (own) return { ...own, source: 'server' };
  const legacy = readDrainFile(drainPath(stateDir), 'local');
  return legacy?.source === 'server' ? legacy : notDraining('server');
}

/**
 * Writes a drain file atomically: the local one for `source: 'local'`, the control plane's for
 * `source: 'server'`; `updatedAt` defaults to now on `clock`.
 *
 * @example writeDrain(dir, { enabled: true, message: 'disk swap', source: 'local' }, clock);
 */
export function writeDrain(
  stateDir: string,
  record: Omit<DrainRecord, 'updatedAt'> & { updatedAt?: string },
  clock: Clock,
): DrainRecord {
  const full: DrainRecord = { ...record, updatedAt: record.updatedAt ?? new Date(clock.now()).toISOString() };
  const file = full.source === 'server' ? serverDrainPath(stateDir) : drainPath(stateDir);
  writeFileAtomicSync(file, `${JSON.stringify(full, null, 2)}\n`, 0o600);
  return full;
}

/** True when two drain records mean the same thing to the control plane. */
export function sameDrain(
  a: Pick<DrainRecord, 'enabled' | 'message'>,
  b: Pick<DrainRecord, 'enabled' | 'message'>,
): boolean {
  return a.enabled === b.enabled && (!a.enabled || drainMessage(a) === drainMessage(b));
}

/**
 * The drain that applies: the operator's when set (it is about this very host), else the
 * control plane's, else none.
 */
export function effectiveDrain(local: DrainRecord, server: DrainRecord): DrainRecord {
  if (local.enabled) return local;
  if (server.enabled) return server;
  return local;
}

/**
 * The running agent's view of its two drains. The local file is the truth for the operator's
 * drain, because `cairn-agent drain` (another process) writes it: the agent re-reads it whenever
 * it matters (an assignment, a hello) and polls it to notice a change promptly. The control
 * plane's drain changes only through {@link DrainState.setServer}, which persists it first, so the
 * agent obeys it after a restart and while cut off.
 */
export class DrainState {
  private localValue: DrainRecord;
  private serverValue: DrainRecord;
  private listener: (() => void) | undefined;

  constructor(
    private readonly stateDir: string,
    /** Dates the control plane's drain when it is persisted. */
    private readonly clock: Clock,
  ) {
    this.localValue = readDrain(stateDir);
    this.serverValue = readServerDrain(stateDir);
  }

  /** The operator's drain, as last read. */
  get local(): DrainRecord {
    return this.localValue;
  }

  /** The control plane's drain, as last received (or read at start). */
  get server(): DrainRecord {
    return this.serverValue;
  }

  /** The drain that applies now (see {@link effectiveDrain}). */
  get current(): DrainRecord {
    return effectiveDrain(this.localValue, this.serverValue);
  }

  /** Re-reads the local file; returns true when the operator's drain changed. */
  refresh(): boolean {
    const next = readDrain(this.stateDir);
    const changed = !sameDrain(next, this.localValue);
    this.localValue = next;
    return changed;
  }

  /** Persists the drain the control plane sent, then adopts it. */
  setServer(record: Pick<DrainRecord, 'enabled' | 'message'>): void {
    this.serverValue = writeDrain(this.stateDir, { ...record, source: 'server' }, this.clock);
  }

  /** Calls `onChange` (at most every `intervalMs`) when the operator's drain changes. */
  watch(onChange: (record: DrainRecord) => void, intervalMs = 500): void {
    if (this.listener) return;
    this.listener = () => {
      if (this.refresh()) onChange(this.localValue);
    };
    // watchFile (stat polling) rather than fs.watch: it survives the file being replaced by a
    // rename and works before the file exists.
    watchFile(drainPath(this.stateDir), { interval: intervalMs, persistent: false }, this.listener);
  }

  close(): void {
    if (!this.listener) return;
    unwatchFile(drainPath(this.stateDir), this.listener);
    this.listener = undefined;
  }
}
