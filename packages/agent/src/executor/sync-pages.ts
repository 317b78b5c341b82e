import { FailureCodes, SYNC_PAGE_BYTES, SYNC_PAGE_EVENT } from '@cairn/proto/vocabulary';
import type { Clock } from '../clock.js';
import type { Spool } from '../spool/spool.js';
import type { ResultOutcome } from './results.js';

/** One page of a listing: its points as a JSON array, and how many. */
export interface ListingPage {
  body: string;
  points: number;
}

/**
 * A listing's points cut into pages of at most `maxBytes` UTF-8 bytes of JSON each, in listing
 * order (a point larger than a page goes on a page of its own). Each point is turned into JSON
 * once, as the page that carries it is made: the whole listing never exists as one string.
 * Throws what `JSON.stringify` throws (a cycle, a BigInt).
 *
 * @example [...listingPages([1, 2, 3], 6)] // → [{ body: '[1,2]', points: 2 }, { body: '[3]', points: 1 }]
 */
export function* listingPages(points: readonly unknown[], maxBytes = SYNC_PAGE_BYTES): Generator<ListingPage> {
  let page: string[] = [];
  let bytes = 2;
  for (const point of points) {
    const json = JSON.stringify(point) ?? 'null';
    const size = Buffer.byteLength(json, 'utf8') + 1;
    if (page.length > 0 && bytes + size > maxBytes) {
      yield { body: `[${page.join(',')}]`, points: page.length };
      page = [];
      bytes = 2;
    }
    page.push(json);
    bytes += size;
  }
  if (page.length > 0) yield { body: `[${page.join(',')}]`, points: page.length };
}

/** What sending a listing's pages needs. */
export interface PagingParts {
  task: { taskId: string; attempt: number };
  spool: Spool;
  clock: Clock;
  /** The task's signal: a cancel stops the paging (the result then says so). */
  signal: AbortSignal;
  /** Pages spooled and not yet acknowledged, at most (the agent holds no more of them in memory). */
  window?: number;
  /** How often to look for acknowledgements while the window is full. */
  pollMs?: number;
  maxBytes?: number;
}

/**
 * The result of a sync whose listing (what the plugin returned) takes more than one page: its
 * pages are spooled as events of type `SYNC_PAGE_EVENT` (durable, acknowledged, sent again after
 * a reconnect like every report), at most `window` unacknowledged at a time, and the result
 * carries only `{"cairnPages": n, "points": m}`. The control plane compares the listing with its
 * records only when it holds all n pages. Undefined when the listing is no array, fits one page
 * (it goes in the result as it always did, so a control plane that knows no pages reads it as
 * before), or cannot be turned into JSON (the result says so the usual way). The event loop is
 * let go between pages, so heartbeats keep going out while a long listing is cut.
 */
export async function pageListing(listing: unknown, parts: PagingParts): Promise<ResultOutcome | undefined> {
  if (!Array.isArray(listing)) return undefined;
  const { spool, clock, signal, task } = parts;
  const window = parts.window ?? 16;
  const unacked: number[] = [];
  let page = 0;
  let points = 0;
  let pages: Generator<ListingPage>;
  let held: ListingPage[];
  try {
    pages = listingPages(listing, parts.maxBytes ?? SYNC_PAGE_BYTES);
    held = [...take(pages, 2)];
  } catch {
    return undefined;
  }
  if (held.length < 2) return undefined;
  for (;;) {
    let next = held.shift();
    if (next === undefined) {
      try {
        const r = pages.next();
        if (r.done) break;
        next = r.value;
      } catch {
        return undefined;
      }
    }
    for (;;) {
      while (unacked.length > 0 && !spool.holds(unacked[0]!)) unacked.shift();
      if (unacked.length < window || signal.aborted) break;
      await new Promise((resolve) => setTimeout(resolve, parts.pollMs ?? 10));
    }
    if (signal.aborted) return cancelled(signal);
    const data = `{"page":${page},"points":${next.body}}`;
    const rec = spool.append('event', {
      ...task,
      type: SYNC_PAGE_EVENT,
      message: '',
      dataJson: data,
      atMs: clock.now(),
    });
    unacked.push(rec.seq);
    page++;
    points += next.points;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { ok: { outputJson: JSON.stringify({ cairnPages: page, points }) } };
}

function* take<T>(from: Iterator<T>, n: number): Generator<T> {
  for (let i = 0; i < n; i++) {
    const r = from.next();
    if (r.done) return;
    yield r.value;
  }
}

function cancelled(signal: AbortSignal): ResultOutcome {
  const reason: unknown = signal.reason;
  const message = reason instanceof Error ? reason.message : 'the task was cancelled while its listing was being sent';
  return { error: { code: FailureCodes.CANCELLED, message, retryable: false } };
}
