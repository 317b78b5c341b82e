import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { fsyncDir, isTempName, readJsonSync, writeFileAtomicSync } from './atomic.js';

const entrySchema = z.object({
  taskId: z.string().min(1),
  attempt: z.int().positive(),
  operation: z.string(),
  plugin: z.string().default(''),
  /** `rejected` and `finished` both mean "this attempt is over on this agent". */
  state: z.enum(['running', 'finished', 'rejected']),
  startedAt: z.number(),
  endedAt: z.number().optional(),
});

/** What the agent remembers about the latest attempt of one task it was assigned. */
export type JournalEntry = z.infer<typeof entrySchema>;

/**
 * Task ids come from the network: use them as file names only when they are plainly safe, and a
 * hash otherwise (the entry itself carries the real id).
 */
function fileNameFor(taskId: string): string {
  if (/^[A-Za-z0-9_-]{1,128}$/.test(taskId)) return `${taskId}.json`;
  return `h-${createHash('sha256').update(taskId).digest('hex')}.json`;
}

/**
 * The task journal: one small file per task (`<stateDir>/tasks/<taskId>.json`) holding the
 * latest attempt this agent knows and whether it is still running. It is what makes execution
 * at-most-once per attempt across reconnects and restarts.
 *
 * @example
 * const journal = TaskJournal.open(stateDir);
 * journal.record({ taskId, attempt, operation: 'backup', plugin, state: 'running', startedAt: clock.now() });
 */
export class TaskJournal {
  private readonly entries = new Map<string, JournalEntry>();

  private constructor(private readonly dir: string) {}

  /** Opens (creating if needed) the journal under `stateDir` and loads every entry. */
  static open(stateDir: string, onDamaged?: (file: string, err: Error) => void): TaskJournal {
    const dir = path.join(stateDir, 'tasks');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return TaskJournal.load(dir, true, onDamaged);
  }

  /**
   * Reads the journal of an agent that may be running right now (for `cairn-agent status`):
   * touches nothing on disk, so it never races the running agent's own writes.
   */
  static read(stateDir: string): TaskJournal {
    const dir = path.join(stateDir, 'tasks');
    return TaskJournal.load(dir, false);
  }

  private static load(dir: string, tidy: boolean, onDamaged?: (file: string, err: Error) => void): TaskJournal {
    const journal = new TaskJournal(dir);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if (!tidy && (err as NodeJS.ErrnoException).code === 'ENOENT') return journal;
      throw err;
    }
    for (const name of names) {
      const file = path.join(dir, name);
      if (isTempName(name)) {
        // Left by a crash of this agent; a reader leaves it to the agent itself.
        if (tidy) rmSync(file, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const entry = entrySchema.parse(readJsonSync(file));
        journal.entries.set(entry.taskId, entry);
      } catch (err) {
        // Atomic writes make this near impossible; keep the file for a human, skip it here.
        onDamaged?.(file, err as Error);
      }
    }
    return journal;
  }

  get(taskId: string): JournalEntry | undefined {
    return this.entries.get(taskId);
  }

  /** Stores an entry durably (it replaces whatever the task had). */
  record(entry: JournalEntry): void {
    writeFileAtomicSync(path.join(this.dir, fileNameFor(entry.taskId)), `${JSON.stringify(entry)}\n`);
    this.entries.set(entry.taskId, entry);
  }

  /**
   * Marks one attempt over. A no-op when the journal has since moved on to a newer attempt of
   * the same task, so a superseded attempt that ends late cannot overwrite its successor.
   */
  finish(taskId: string, attempt: number, endedAt: number): void {
    const entry = this.entries.get(taskId);
    if (!entry || entry.attempt !== attempt || entry.state !== 'running') return;
    this.record({ ...entry, state: 'finished', endedAt });
  }

  /** Entries still marked running. */
  running(): JournalEntry[] {
    return [...this.entries.values()].filter((e) => e.state === 'running');
  }

  all(): JournalEntry[] {
    return [...this.entries.values()];
  }

  /** Deletes entries that ended more than `maxAgeMs` ago; returns how many. */
  prune(maxAgeMs: number, now: number): number {
    let removed = 0;
    for (const entry of [...this.entries.values()]) {
      if (entry.state === 'running') continue;
      if (now - (entry.endedAt ?? entry.startedAt) <= maxAgeMs) continue;
      rmSync(path.join(this.dir, fileNameFor(entry.taskId)), { force: true });
      this.entries.delete(entry.taskId);
      removed++;
    }
    if (removed > 0) fsyncDir(this.dir);
    return removed;
  }
}
