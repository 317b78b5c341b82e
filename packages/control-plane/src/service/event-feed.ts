import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Selectable } from 'kysely';
import type { EventRow } from '../store/schema.js';
import type { EventRepository } from '../store/event-repository.js';

type Event = Selectable<EventRow>;

/** What the feed needs of the store. */
export type EventLog = Pick<EventRepository, 'list' | 'lastId'>;

export interface EventFeedLimits {
  /** Rows per store query, for the shared poller and for each stream catching up. */
  batch: number;
  /**
   * Events a live stream may have waiting in memory. A stream whose client reads slower than
   * events arrive drops them past this bound and reads them back from the store at its own pace.
   */
  maxQueued: number;
}

export const EVENT_FEED_LIMITS: EventFeedLimits = { batch: 200, maxQueued: 1000 };

interface Subscriber {
  tenantId: string | undefined;
  /**
   * The position in the global log this subscriber has reached: every event of its tenant with
   * an id up to here has been handed out. It counts every tenant's ids, so a scan that finds none
   * of this subscriber's events still moves it.
   */
  position: number;
  /**
   * Events up to here are this subscriber's to read from the store; the shared poller queues the
   * ones above it. Moves up only when the queue overflows.
   */
  target: number;
  /** This subscriber's events with ids above `target`, in id order. */
  queue: Event[];
  wake: (() => void) | undefined;
}

/** One stream's place in the feed: where it starts, then its batches. */
export interface Subscription {
  /** The position the stream starts after (`after` as given, clamped to the end of the log). */
  readonly start: number;
  /**
   * Batches of events, in id order, until `signal` aborts or the feed closes; an empty batch
   * after `idleMs` without events, so the caller can keep its connection alive. Pulled: nothing
   * is read from the store while the caller is still writing the previous batch.
   */
  batches(signal: AbortSignal, idleMs: number): AsyncGenerator<Event[]>;
  /** Leaves the feed (also done when `batches` ends). */
  close(): void;
}

/**
 * One poller of the event log per process, fanned out to every live stream: N listeners cost one
 * query per poll instead of N. A new listener is registered at once, and the poller queues for it
 * every event past the feed's position at that moment (its target); the listener reads the events
 * up to its target from the store itself, in bounded batches and only as fast as its client takes
 * them, then continues with its queue. So it gets every event once and in id order, a join costs
 * one query plus one per batch of its own events, and no listener ever moves the shared position.
 */
export class EventFeed {
  private readonly subscribers = new Set<Subscriber>();
  /** The last event id the shared poller has read. */
  private head = 0;
  private polling = false;
  private closed = false;
  private readonly limits: EventFeedLimits;

  constructor(
    private readonly log: EventLog,
    private readonly pollMs: number,
    limits: Partial<EventFeedLimits> = {},
  ) {
    this.limits = { ...EVENT_FEED_LIMITS, ...limits };
  }

  /** Streams currently registered. */
  get size(): number {
    return this.subscribers.size;
  }

  /**
   * Joins the feed after `after` (only `tenantId`'s events when given). Without `after` the
   * stream starts at the end of the log (live events only); an `after` past the end of the log
   * is a position, not a promise, and is clamped to it.
   */
  async open(after: number | undefined, tenantId: string | undefined): Promise<Subscription> {
    const end = await this.log.lastId();
    const start = after === undefined ? end : Math.min(after, end);
    // Nobody is listening: the shared position may jump to the end of the log (always a real id).
    if (!this.polling) this.head = Math.max(this.head, end);
    const sub: Subscriber = {
      tenantId,
      position: start,
      target: Math.max(this.head, start),
      queue: [],
      wake: undefined,
    };
    if (!this.closed) {
      this.subscribers.add(sub);
      this.startPolling();
    }
    return {
      start,
      batches: (signal, idleMs) => this.batches(sub, signal, idleMs),
      close: () => this.leave(sub),
    };
  }

  /** Ends every stream (shutdown). */
  close(): void {
    this.closed = true;
    for (const sub of this.subscribers) sub.wake?.();
  }

  private leave(sub: Subscriber): void {
    this.subscribers.delete(sub);
    sub.queue = [];
  }

  private async *batches(sub: Subscriber, signal: AbortSignal, idleMs: number): AsyncGenerator<Event[]> {
    const { batch } = this.limits;
    const onAbort = () => sub.wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted && !this.closed && this.subscribers.has(sub)) {
        if (sub.position < sub.target) {
          const upTo = sub.target;
          const rows = await this.log.list(sub.position, batch, sub.tenantId, upTo);
          // Fewer than a batch: nothing of ours is left up to `upTo`, whoever's ids lie between.
          sub.position = rows.length < batch ? upTo : rows[rows.length - 1]!.id;
          if (rows.length > 0) yield rows;
          // Let requests and other streams run between batches, even when the store answers
          // synchronously and the client reads as fast as we write.
          await nextTurn();
          continue;
        }
        if (sub.queue.length === 0) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            sub.wake = resolve;
            timer = setTimeout(resolve, idleMs);
          });
          clearTimeout(timer);
          sub.wake = undefined;
          if (signal.aborted || this.closed) return;
          if (sub.queue.length === 0 && sub.position >= sub.target) yield [];
          continue;
        }
        const next = sub.queue.splice(0, batch);
        sub.position = next[next.length - 1]!.id;
        yield next;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.leave(sub);
    }
  }

  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    void this.poll();
  }

  private async poll(): Promise<void> {
    const { batch, maxQueued } = this.limits;
    try {
      while (this.subscribers.size > 0 && !this.closed) {
        const rows = await this.log.list(this.head, batch);
        if (rows.length > 0) {
          this.head = rows[rows.length - 1]!.id;
          for (const sub of this.subscribers) {
            let woken = false;
            for (const r of rows) {
              if (r.id <= sub.target) continue;
              if (sub.tenantId !== undefined && r.tenantId !== sub.tenantId) continue;
              sub.queue.push(r);
              woken = true;
            }
            if (sub.queue.length > maxQueued) {
              // Its client is slower than the log grows: forget these, it reads them from the store.
              sub.queue = [];
              sub.target = this.head;
            }
            if (woken) sub.wake?.();
          }
        }
        if (rows.length < batch) await new Promise((resolve) => setTimeout(resolve, this.pollMs));
        else await nextTurn();
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
