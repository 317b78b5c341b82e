/**
 * The queue's head kept across dispatch rounds while a backlog lasts.
 *
 * Reading the head ranks every queued task (for the tenants' fair turns), so its cost grows with
 * the queue: a few ms at a few thousand queued tasks, on SQLite on the control plane's own thread.
 * With a backlog, rounds follow each other as fast as tasks end, and each placed a few tasks
 * after ranking them all again. A head read that came back full (more queued than it asked for)
 * is kept instead, and the rounds that follow within `maxAgeMs` place from it, as long as it still
 * holds a task for every free slot:
 *
 * - every task offered to a claim leaves it, claimed or not (another replica took it, it was
 *   cancelled, its instance was busy): a claim that lost is never tried again from here;
 * - so do tasks refused or passed over on the round's look at maintenance;
 * - a task whose instance was claimed for since the read is passed over (one operation at a time
 *   per instance), until the next read;
 * - a read that came back short (the whole eligible queue) is not kept: small queues are cheap to
 *   read, and a task queued since must not wait.
 *
 * What a kept head does not show is work queued after it was read: a task queued while a backlog
 * is worked through is ranked by the first read after `maxAgeMs`. The claim checks each task's
 * state and attempt again, so a stale entry is never dispatched twice or after its cancel.
 */
export interface HeadTask {
  id: string;
  instanceId: string | null;
}

export class KeptHead<T extends HeadTask> {
  private tasks: T[] = [];
  private key = '';
  private readAt = -Infinity;
  /** Instances claimed for since the read: their other tasks wait for the next read. */
  private readonly busy = new Set<string>();

  constructor(private readonly maxAgeMs: number) {}

  /**
   * The kept head for a round with `free` slots, read under `key` (what the read filtered on),
   * or undefined when it must be read again: none kept, another key, older than `maxAgeMs` at
   * `now`, or fewer tasks left than free slots.
   */
  take(key: string, free: number, now: number): T[] | undefined {
    if (key !== this.key || now - this.readAt >= this.maxAgeMs) return undefined;
    const left = this.tasks.filter((t) => t.instanceId === null || !this.busy.has(t.instanceId));
    return left.length >= Math.max(1, free) ? left : undefined;
  }

  /**
   * A head just read under `key` at `now`; kept only when `full` (it came back with as many tasks
   * as it asked for: more are queued behind it).
   */
  read(key: string, tasks: readonly T[], full: boolean, now: number): void {
    this.busy.clear();
    if (!full) {
      this.tasks = [];
      this.readAt = -Infinity;
      return;
    }
    this.tasks = [...tasks];
    this.key = key;
    this.readAt = now;
  }

  /**
   * Tasks that leave the head: offered to a claim (`offered`: their instances count as busy until
   * the next read, whether the claim won them or not), or refused or passed over.
   */
  drop(tasks: readonly T[], offered: boolean): void {
    if (offered) for (const t of tasks) if (t.instanceId !== null) this.busy.add(t.instanceId);
    if (tasks.length === 0 || this.tasks.length === 0) return;
    const ids = new Set(tasks.map((t) => t.id));
    this.tasks = this.tasks.filter((t) => !ids.has(t.id));
  }
}
