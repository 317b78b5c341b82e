import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Selectable } from 'kysely';
import { TooManyError } from '../domain/errors.js';
import { StreamQuota, type StreamLimits } from '../domain/hold-quota.js';
import { checkEventsKept } from '../domain/history.js';
import { isTerminal, TASK_STATES, type TaskState } from '../domain/task.js';
import type { EventRow } from '../store/schema.js';
import type { EventFilter, EventRepository, LiveProgress } from '../store/event-repository.js';
import { elapsedMs } from '../clock.js';

type Event = Selectable<EventRow>;

/** What the feed needs of the store. */
export type EventLog = Pick<
  EventRepository,
  'list' | 'all' | 'sees' | 'lastId' | 'progressAfter' | 'lastProgressId' | 'jobsOfTasks' | 'forgottenThrough'
>;

/** A task's latest progress, sent live: not an event of the log (no id, never replayed). */
export interface ProgressMessage {
  kind: 'progress';
  report: LiveProgress;
}

/** What a stream sends: events of the log in id order, and live progress between them. */
export type FeedItem = Event | ProgressMessage;

export function isProgress(item: FeedItem): item is ProgressMessage {
  return (item as ProgressMessage).kind === 'progress';
}

/** The type of the live progress messages, as a stream names them (and as a type filter matches it). */
export const PROGRESS_EVENT = 'task.progress';

/** A live stream sends at most one progress message per task per this many ms (the latest wins). */
export const PROGRESS_EVERY_MS = 1000;

/** Whether an event says its task has ended (`task.<terminal state>`). */
function endsTask(e: Event): boolean {
  if (e.taskId === null || !e.type.startsWith('task.')) return false;
  const state = e.type.slice('task.'.length);
  return (TASK_STATES as readonly string[]).includes(state) && isTerminal(state as TaskState);
}

export interface EventFeedLimits {
  /** Rows per store query, for the shared poller and for each stream catching up. */
  batch: number;
  /**
   * Events a live stream may have waiting in memory, and their size (about: text and JSON data
   * plus a fixed overhead per event). A stream whose client reads slower than events arrive drops
   * them past either bound and reads them back from the store at its own pace.
   */
  maxQueued: number;
  maxQueuedBytes: number;
  /** Streams one token, and one tenant, may hold open at once in this process (429 beyond). */
  streams: StreamLimits;
}

export const EVENT_FEED_LIMITS: EventFeedLimits = {
  batch: 200,
  maxQueued: 1000,
  maxQueuedBytes: 256 * 1024,
  streams: { perToken: 5, perTenant: 20 },
};

/** What a refused stream is told to wait before trying again: a stream ends when its client goes. */
export const STREAM_RETRY_AFTER_S = 5;

/** Who opens a stream: its places are counted against this token and this tenant. */
export interface StreamHolder {
  tokenId: string;
  tenantId: string;
}

/** About what an event holds in memory while it waits to be sent. */
function eventBytes(e: Event): number {
  return 256 + e.type.length + e.message.length + (e.data?.length ?? 0);
}

interface Subscriber {
  tenantId: string | undefined;
  filter: EventFilter;
  /** The latest progress of each task this live subscriber follows, not yet sent. */
  progress: Map<string, ProgressMessage>;
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
  /** Rows per store read while catching up: fewer when events are large, so a read holds about maxQueuedBytes. */
  readLimit: number;
  /** This subscriber's events with ids above `target`, in id order, and their size. */
  queue: Event[];
  queuedBytes: number;
  wake: (() => void) | undefined;
  /** Gives the stream's place back (once). */
  release: () => void;
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
  batches(signal: AbortSignal, idleMs: number): AsyncGenerator<FeedItem[]>;
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
  /** The last progress report id the shared poller has read (undefined: none yet, it starts at the newest). */
  private progressHead: number | undefined;
  /** Per task: the newest progress report not yet sent, and when the last one was sent. */
  private readonly pendingProgress = new Map<string, LiveProgress>();
  private readonly progressSentAt = new Map<string, number>();
  private polling = false;
  private closed = false;
  private readonly limits: EventFeedLimits;
  private readonly quota: StreamQuota;

  constructor(
    private readonly log: EventLog,
    private readonly pollMs: number,
    limits: Partial<EventFeedLimits> = {},
  ) {
    this.limits = { ...EVENT_FEED_LIMITS, ...limits };
    this.quota = new StreamQuota(this.limits.streams);
  }

  /** Streams currently registered. */
  get size(): number {
    return this.subscribers.size;
  }

  /** Streams holding a place (registered, or opened and not yet closed by their route). */
  get held(): number {
    return this.quota.held();
  }

  /** About how much the events waiting for slow streams take in memory, over all streams. */
  get queuedBytes(): number {
    let n = 0;
    for (const sub of this.subscribers) n += sub.queuedBytes;
    return n;
  }

  /**
   * Joins the feed after `after` (only `tenantId`'s events when given), in a place counted
   * against `holder` (TooManyError, 429, when its token or tenant holds as many as allowed).
   * Without `after` the stream starts at the end of the log (live events only); an `after` past
   * the end of the log is a position, not a promise, and is clamped to it. An `after` behind
   * what the log still keeps is refused (GoneError, 410), before any place is taken.
   */
  async open(
    after: number | undefined,
    tenantId: string | undefined,
    holder: StreamHolder,
    filter: EventFilter = {},
  ): Promise<Subscription> {
    if (after !== undefined) checkEventsKept(after, await this.log.forgottenThrough());
    const slot = this.quota.acquire(holder.tokenId, holder.tenantId);
    if (!slot.ok) throw new TooManyError('too_many_streams', slot.message, STREAM_RETRY_AFTER_S, slot.quota);
    let end: number;
    try {
      end = await this.log.lastId();
    } catch (err) {
      slot.release();
      throw err;
    }
    const start = after === undefined ? end : Math.min(after, end);
    // Nobody is listening: the shared position may jump to the end of the log (always a real id).
    if (!this.polling) this.head = Math.max(this.head, end);
    const sub: Subscriber = {
      tenantId,
      filter,
      progress: new Map(),
      position: start,
      target: Math.max(this.head, start),
      // Sizes are unknown until the first read: assume events of 16 KiB.
      readLimit: Math.max(1, Math.min(this.limits.batch, Math.floor(this.limits.maxQueuedBytes / 16_384))),
      queue: [],
      queuedBytes: 0,
      wake: undefined,
      release: slot.release,
    };
    if (!this.closed) {
      this.subscribers.add(sub);
      this.startPolling();
    } else sub.release();
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
    sub.queuedBytes = 0;
    sub.progress.clear();
    sub.release();
  }

  private async *batches(sub: Subscriber, signal: AbortSignal, idleMs: number): AsyncGenerator<FeedItem[]> {
    const { batch, maxQueuedBytes } = this.limits;
    const onAbort = () => sub.wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted && !this.closed && this.subscribers.has(sub)) {
        if (sub.position < sub.target) {
          const upTo = sub.target;
          const limit = sub.readLimit;
          // Up to `limit` of ours, or a bounded stretch of the log when the stream filters: on from
          // where that read ended, whoever's ids lie between.
          const { rows, through } = await this.log.list(sub.position, limit, sub.tenantId, upTo, sub.filter);
          sub.position = through;
          if (rows.length > 0) {
            const largest = Math.max(...rows.map(eventBytes));
            sub.readLimit = Math.max(1, Math.min(batch, Math.floor(maxQueuedBytes / largest)));
            yield rows;
          }
          // Let requests and other streams run between batches, even when the store answers
          // synchronously and the client reads as fast as we write.
          await nextTurn();
          continue;
        }
        if (sub.queue.length === 0 && sub.progress.size > 0) {
          const progress = [...sub.progress.values()];
          sub.progress.clear();
          yield progress;
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
          if (sub.queue.length === 0 && sub.progress.size === 0 && sub.position >= sub.target) yield [];
          continue;
        }
        const next = sub.queue.splice(0, batch);
        for (const e of next) sub.queuedBytes -= eventBytes(e);
        sub.position = next[next.length - 1]!.id;
        yield next;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.leave(sub);
    }
  }

  /** The backup job of each of these tasks a job's run started, when a stream follows a job. */
  private async jobsOf(taskIds: string[]): Promise<Map<string, string>> {
    for (const sub of this.subscribers) if (sub.filter.jobId !== undefined) return this.log.jobsOfTasks(taskIds);
    return new Map();
  }

  /**
   * Reads the progress reports stored since the last round (through any replica's agent sessions:
   * the store is what replicas share) and hands each task's latest to the live streams that follow
   * it, at most once per task every PROGRESS_EVERY_MS; a newer report waits for its turn and
   * replaces the one waiting. Returns how many reports it read.
   */
  private async pollProgress(): Promise<number> {
    const { batch } = this.limits;
    this.progressHead ??= await this.log.lastProgressId();
    const reports = await this.log.progressAfter(this.progressHead, batch);
    if (reports.length > 0) this.progressHead = reports[reports.length - 1]!.id;
    for (const r of reports) this.pendingProgress.set(r.taskId, r);
    const now = elapsedMs();
    const due = [...this.pendingProgress.values()].filter(
      (r) => now - (this.progressSentAt.get(r.taskId) ?? -Infinity) >= PROGRESS_EVERY_MS,
    );
    if (due.length === 0) return reports.length;
    const jobs = await this.jobsOf(due.map((r) => r.taskId));
    for (const r of due) {
      this.pendingProgress.delete(r.taskId);
      this.progressSentAt.set(r.taskId, now);
    }
    // Tasks that sent nothing for a while are forgotten (their end usually is seen first).
    for (const [taskId, at] of this.progressSentAt)
      if (now - at > 60 * PROGRESS_EVERY_MS) this.progressSentAt.delete(taskId);
    for (const sub of this.subscribers) {
      // A stream still reading the log back from the store gets no progress until it is live.
      if (sub.position < sub.target) continue;
      let woken = false;
      for (const r of due) {
        if (sub.tenantId !== undefined && r.tenantId !== sub.tenantId) continue;
        if (!matches(sub.filter, PROGRESS_EVENT, r.taskId, jobs.get(r.taskId), r.instanceId)) continue;
        sub.progress.set(r.taskId, { kind: 'progress', report: r });
        woken = true;
      }
      if (woken) sub.wake?.();
    }
    return reports.length;
  }

  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    void this.poll();
  }

  private async poll(): Promise<void> {
    const { batch, maxQueued, maxQueuedBytes } = this.limits;
    try {
      while (this.subscribers.size > 0 && !this.closed) {
        const rows = await this.log.all(this.head, batch);
        const jobs = await this.jobsOf(rows.filter((r) => r.taskId !== null).map((r) => r.taskId!));
        if (rows.length > 0) {
          this.head = rows[rows.length - 1]!.id;
          for (const r of rows) {
            if (!endsTask(r)) continue;
            this.pendingProgress.delete(r.taskId!);
            this.progressSentAt.delete(r.taskId!);
          }
          for (const sub of this.subscribers) {
            let woken = false;
            for (const r of rows) {
              if (r.id <= sub.target) continue;
              if (!this.log.sees(sub.tenantId, r)) continue;
              if (
                !matches(
                  sub.filter,
                  r.type,
                  r.taskId,
                  r.jobId ?? (r.taskId !== null ? jobs.get(r.taskId) : undefined),
                  r.instanceId,
                )
              )
                continue;
              // Nothing of a task's progress follows its end.
              if (endsTask(r)) sub.progress.delete(r.taskId!);
              sub.queue.push(r);
              sub.queuedBytes += eventBytes(r);
              woken = true;
            }
            if (sub.queue.length > maxQueued || sub.queuedBytes > maxQueuedBytes) {
              // Its client is slower than the log grows: forget these, it reads them from the store.
              sub.queue = [];
              sub.queuedBytes = 0;
              sub.progress.clear();
              sub.target = this.head;
            }
            if (woken) sub.wake?.();
          }
        }
        const reports = await this.pollProgress();
        if (rows.length < batch && reports < batch) await new Promise((resolve) => setTimeout(resolve, this.pollMs));
        else await nextTurn();
      }
    } catch {
      // The store is briefly away: wait a little before the next round starts.
      await new Promise((resolve) => setTimeout(resolve, this.pollMs * 4));
    } finally {
      this.polling = false;
      if (this.subscribers.size === 0) {
        // Nobody listens: progress read again later starts at the newest report.
        this.progressHead = undefined;
        this.pendingProgress.clear();
        this.progressSentAt.clear();
      }
      // A subscriber may have joined while the loop was ending.
      if (this.subscribers.size > 0 && !this.closed) this.startPolling();
    }
  }
}

/** Whether a stream following `filter` gets an event of this type, task, job and instance. */
function matches(
  filter: EventFilter,
  type: string,
  taskId: string | null,
  jobId: string | undefined,
  instanceId: string | null,
): boolean {
  if (filter.typePrefix !== undefined && !type.startsWith(filter.typePrefix)) return false;
  if (filter.instanceId !== undefined && instanceId !== filter.instanceId) return false;
  if (filter.taskId !== undefined && taskId !== filter.taskId) return false;
  if (filter.jobId !== undefined && jobId !== filter.jobId) return false;
  return true;
}
