import type { Selectable } from 'kysely';
import type { EventRow } from '../store/schema.js';
import type { TaskRepository } from '../store/task-repository.js';

type Event = Selectable<EventRow>;

interface Subscriber {
  tenantId: string | undefined;
  /** The last event id this subscriber has been given. */
  after: number;
  queue: Event[];
  wake: (() => void) | undefined;
}

const BATCH = 500;

/**
 * One poller of the event log per process, fanned out to every live stream: N listeners cost one
 * query per poll instead of N. A new listener first catches up on its own (from its resume
 * point) and joins the shared feed only once it has reached the feed's position, so it gets
 * every event exactly once and in id order.
 */
export class EventFeed {
  private readonly subscribers = new Set<Subscriber>();
  /** The last event id the shared poller has handed out. */
  private head = 0;
  private polling = false;
  private closed = false;

  constructor(
    private readonly tasks: TaskRepository,
    private readonly pollMs: number,
  ) {}

  /**
   * Batches of events after `after` (only `tenantId`'s when given), as they are stored, until
   * `signal` aborts or the feed closes. Yields an empty batch after `idleMs` without events, so
   * the caller can keep its connection alive.
   */
  async *stream(
    after: number,
    tenantId: string | undefined,
    signal: AbortSignal,
    idleMs: number,
  ): AsyncGenerator<Event[]> {
    const sub: Subscriber = { tenantId, after, queue: [], wake: undefined };
    // Catch up alone until level with the shared feed; joining is synchronous after the last check.
    for (;;) {
      if (signal.aborted || this.closed) return;
      const rows = await this.tasks.listEvents(sub.after, BATCH, tenantId);
      if (rows.length > 0) {
        sub.after = rows[rows.length - 1]!.id;
        yield rows;
      }
      if (rows.length < BATCH && (!this.polling || sub.after >= this.head)) break;
    }
    if (!this.polling) this.head = Math.max(this.head, sub.after);
    this.subscribers.add(sub);
    this.startPolling();
    const onAbort = () => sub.wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted && !this.closed) {
        if (sub.queue.length === 0) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            sub.wake = resolve;
            timer = setTimeout(resolve, idleMs);
          });
          clearTimeout(timer);
          sub.wake = undefined;
          if (signal.aborted || this.closed) return;
        }
        const batch = sub.queue.splice(0);
        yield batch;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.subscribers.delete(sub);
    }
  }

  /** Ends every stream (shutdown). */
  close(): void {
    this.closed = true;
    for (const sub of this.subscribers) sub.wake?.();
  }

  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    void this.poll();
  }

  private async poll(): Promise<void> {
    try {
      while (this.subscribers.size > 0 && !this.closed) {
        const rows = await this.tasks.listEvents(this.head, BATCH);
        if (rows.length > 0) {
          this.head = rows[rows.length - 1]!.id;
          for (const sub of this.subscribers) {
            const mine = rows.filter(
              (r) => r.id > sub.after && (sub.tenantId === undefined || r.tenantId === sub.tenantId),
            );
            if (mine.length === 0) continue;
            sub.after = mine[mine.length - 1]!.id;
            sub.queue.push(...mine);
            sub.wake?.();
          }
        }
        if (rows.length < BATCH) await new Promise((resolve) => setTimeout(resolve, this.pollMs));
      }
    } catch {
      // The store is briefly away: wait a little before the next round starts.
      await new Promise((resolve) => setTimeout(resolve, this.pollMs * 4));
    } finally {
      this.polling = false;
      // A subscriber may have joined while the loop was ending.
      if (this.subscribers.size > 0 && !this.closed) this.startPolling();
    }
  }
}
