import { unwatchFile, watchFile } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readJsonSync, writeFileAtomicSync } from './atomic.js';

/** Name of the drain file inside the state directory. */
export const DRAIN_FILE = 'drain.json';

/** The message shown when maintenance is on and nobody wrote a better one. */
export const DEFAULT_DRAIN_MESSAGE = 'Service provider is currently undergoing scheduled maintenance.';

const drainSchema = z.object({
  enabled: z.boolean(),
  message: z.string().default(''),
  /** Who set it: an operator on the host (`local`) or the control plane (`server`). */
  source: z.enum(['local', 'server']).default('local'),
  updatedAt: z.string().default(''),
});

/** The agent's maintenance drain, as stored on its own disk. */
export type DrainRecord = z.infer<typeof drainSchema>;

const NOT_DRAINING: DrainRecord = { enabled: false, message: '', source: 'local', updatedAt: '' };

export function drainPath(stateDir: string): string {
  return path.join(stateDir, DRAIN_FILE);
}

/** The message to use for a drain record: its own, or the default. */
export function drainMessage(record: Pick<DrainRecord, 'message'>): string {
  return record.message.trim() === '' ? DEFAULT_DRAIN_MESSAGE : record.message;
}

/**
 * Reads the drain file. A missing file means "not draining". A damaged file means "draining"
 * with the default message: refusing backups by mistake is recoverable, running them during a
 * maintenance window may not be.
 */
export function readDrain(stateDir: string): DrainRecord {
  let raw: unknown;
  try {
    raw = readJsonSync(drainPath(stateDir));
  } catch {
    return { enabled: true, message: DEFAULT_DRAIN_MESSAGE, source: 'local', updatedAt: '' };
  }
  if (raw === undefined) return NOT_DRAINING;
  const parsed = drainSchema.safeParse(raw);
  if (!parsed.success) return { enabled: true, message: DEFAULT_DRAIN_MESSAGE, source: 'local', updatedAt: '' };
  return parsed.data;
}

/**
 * Writes the drain file atomically.
 *
 * @example writeDrain(dir, { enabled: true, message: 'disk swap', source: 'local' });
 */
export function writeDrain(
  stateDir: string,
  record: Omit<DrainRecord, 'updatedAt'> & { updatedAt?: string },
): DrainRecord {
  const full: DrainRecord = { ...record, updatedAt: record.updatedAt ?? new Date().toISOString() };
  writeFileAtomicSync(drainPath(stateDir), `${JSON.stringify(full, null, 2)}\n`, 0o600);
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
 * The running agent's view of its drain file. The file is the single source of truth, because
 * `cairn-agent drain` (another process) writes it: the agent re-reads it whenever it matters
 * (an assignment, a heartbeat) and polls it to notice an operator's change promptly.
 */
export class DrainState {
  private value: DrainRecord;
  private listener: (() => void) | undefined;

  constructor(private readonly stateDir: string) {
    this.value = readDrain(stateDir);
  }

  /** The last state read or written. */
  get current(): DrainRecord {
    return this.value;
  }

  /** Re-reads the file; returns true when the state changed. */
  refresh(): boolean {
    const next = readDrain(this.stateDir);
    const changed = !sameDrain(next, this.value);
    this.value = next;
    return changed;
  }

  /** Persists a new state (for example one the control plane sent) and adopts it. */
  set(record: Omit<DrainRecord, 'updatedAt'>): void {
    this.value = writeDrain(this.stateDir, record);
  }

  /** Calls `onChange` (at most every `intervalMs`) when the file changes. */
  watch(onChange: (record: DrainRecord) => void, intervalMs = 500): void {
    if (this.listener) return;
    this.listener = () => {
      if (this.refresh()) onChange(this.value);
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
