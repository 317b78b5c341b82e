/**
 * The queue's head kept across dispatch rounds while a backlog lasts.
 *
 * Reading the head ranks queued tasks (for the tenants' fair turns), so its cost grows with the
 * queue: a few ms at a few thousand queued tasks. With a backlog, rounds follow each other as fast
 * as tasks end, and each placed a few tasks after ranking them all again. A head read that came
 * back full (more queued than it asked for) is kept instead, and the rounds that follow within
 * its age place from it, as long as it still holds a task for every free slot:
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
 * is worked through is ranked by the first read after the head's age. The claim checks each
 * task's state and attempt again, so a stale entry is never dispatched twice or after its cancel.
 *
 * The age is `maxAgeMs`, or {@link KEPT_PER_READ_MS} times what the read took when that is longer.
 * A read's cost grows with the queue: MySQL/MariaDB rank every queued task (about 60 ms at 20,000
 * queued here), SQLite reads each tenant's first tasks (about 12 ms with 1,000 tenants queueing).
 * A head kept 100 ms after a read of 100 ms would be read again as soon as it was, with the
 * dispatcher reading the queue half of the time. Kept nine times as long as its read, reading
 * takes at most a tenth of the time while a backlog lasts, whatever the queue's length; the price
 * is that a task queued behind such a backlog waits up to that age to be ranked (0.54 s after a
 * read of 60 ms).
 */
export const KEPT_PER_READ_MS = 9;

export interface HeadTask {
  id: string;
  instanceId: string | null;
}

export class KeptHead<T extends HeadTask> {
  private tasks: T[] = [];
  private key = '';
  private readAt = -Infinity;
  /** How long the kept read serves: see {@link KEPT_PER_READ_MS}. */
  private ageMs: number;
  /** Instances claimed for since the read: their other tasks wait for the next read. */
  private readonly busy = new Set<string>();

  constructor(private readonly maxAgeMs: number) {
    this.ageMs = maxAgeMs;
  }

  /**
   * The kept head for a round with `free` slots, read under `key` (what the read filtered on),
   * or undefined when it must be read again: none kept, another key, older than its age at `now`
   * (`maxAgeMs`, or longer after a slow read), or fewer tasks left than free slots.
   */
  take(key: string, free: number, now: number): T[] | undefined {
    if (key !== this.key || now - this.readAt >= this.ageMs) return undefined;
    const left = this.tasks.filter((t) => t.instanceId === null || !this.busy.has(t.instanceId));
    return left.length >= Math.max(1, free) ? left : undefined;
  }

  /**
   * A head read under `key`, in `readMs`, that came back at `now`; kept only when `full` (it came
   * back with as many tasks as it asked for: more are queued behind it), for `maxAgeMs` or
   * {@link KEPT_PER_READ_MS} × `readMs`, whichever is longer.
   */
  read(key: string, tasks: readonly T[], full: boolean, now: number, readMs = 0): void {
    this.busy.clear();
    if (!full) {
      this.tasks = [];
      this.readAt = -Infinity;
      return;
    }
    this.tasks = [...tasks];
    this.key = key;
    this.readAt = now;
    this.ageMs = Math.max(this.maxAgeMs, KEPT_PER_READ_MS * readMs);
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
