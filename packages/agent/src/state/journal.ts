import type { Clock } from '../clock.js';
import type { JournalEntry } from './journal-entry.js';
import { AgentLog, type LogEntry } from './wal.js';

export type { JournalEntry } from './journal-entry.js';

/**
 * The task journal: the latest attempt of every task this agent was assigned and whether it is
 * still running, kept in the agent's log ({@link AgentLog}). It is what makes execution
 * at-most-once per attempt across reconnects and restarts.
 *
 * `record` changes the journal at once (an assignment sent twice in one turn sees the first) and
 * appends the entry to the log's next batch; {@link durable} resolves once it is on disk. The
 * executor awaits that before a plugin starts, so a restart always knows what may have run.
 *
 * @example
 * const journal = new TaskJournal(log);
 * journal.record({ taskId, attempt, operation: 'backup', plugin, state: 'running', startedAt: clock.now() });
 * await journal.durable();
 */
export class TaskJournal {
  private readonly entries = new Map<string, JournalEntry>();

  constructor(
    entries: readonly LogEntry[],
    private readonly log?: AgentLog,
  ) {
    for (const entry of entries) {
      if (entry.t === 'task') this.entries.set(entry.e.taskId, entry.e);
      else if (entry.t === 'forget') for (const id of entry.ids) this.entries.delete(id);
    }
    log?.addSnapshotSource(() => [...this.entries.values()].map((e) => ({ t: 'task' as const, e })));
  }

  /** Opens a journal on a log of its own (an agent shares one log between its spool and journal). */
  static open(
    stateDir: string,
    options: { clock: Clock; onDamaged?: (file: string, err: Error) => void },
  ): TaskJournal {
    const log = AgentLog.open(stateDir, options);
    return new TaskJournal(log.replayed, log);
  }

  /**
   * Reads the journal of an agent that may be running right now (for `cairn-agent status`):
   * touches nothing on disk, so it never races the running agent's own writes. Read-only.
   */
  static read(stateDir: string): TaskJournal {
    return new TaskJournal(AgentLog.read(stateDir));
  }

  get(taskId: string): JournalEntry | undefined {
    return this.entries.get(taskId);
  }

  /** Stores an entry (it replaces whatever the task had); durable once {@link durable} resolves. */
  record(entry: JournalEntry): void {
    this.writable().append({ t: 'task', e: entry });
    this.entries.set(entry.taskId, entry);
  }

  /** Resolves once every entry recorded so far is on disk. */
  durable(): Promise<void> {
    return this.writable().flushed();
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

  /** Forgets entries that ended more than `maxAgeMs` ago; returns how many. */
  prune(maxAgeMs: number, now: number): number {
    const ids: string[] = [];
    for (const entry of this.entries.values()) {
      if (entry.state === 'running') continue;
      if (now - (entry.endedAt ?? entry.startedAt) <= maxAgeMs) continue;
      ids.push(entry.taskId);
    }
    for (const id of ids) this.entries.delete(id);
    // Forgetting needs no write of its own: one lost in a crash is pruned again.
    if (ids.length > 0) this.writable().append({ t: 'forget', ids }, false);
    return ids.length;
  }

  private writable(): AgentLog {
    if (!this.log) throw new Error('this journal was opened read-only');
    return this.log;
  }
}
