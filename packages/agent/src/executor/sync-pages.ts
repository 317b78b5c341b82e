import { FailureCodes, SYNC_PAGE_BYTES, SYNC_PAGE_EVENT } from '@cairn/proto/vocabulary';
import type { Clock } from '../clock.js';
import type { Spool } from '../spool/spool.js';
import type { ResultOutcome } from './results.js';

/**
 * A listing's points (a JSON array) cut into pages of at most `maxBytes` UTF-8 bytes of JSON
 * each, in listing order; a point larger than a page goes on a page of its own. Undefined when
 * the output is not an array (the control plane fails such a listing as it is).
 *
 * @example [...listingPages('[1,2,3]', 6)!] // → [{ body: '[1,2]', points: 2 }, { body: '[3]', points: 1 }]
 */
export function listingPages(
  outputJson: string,
  maxBytes = SYNC_PAGE_BYTES,
): Iterable<{ body: string; points: number }> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(outputJson);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  const points: unknown[] = value;
  return (function* () {
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
  })();
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
 * A sync's result whose listing does not fit one page: its pages are spooled as events of type
 * `SYNC_PAGE_EVENT` (durable, acknowledged, sent again after a reconnect like every report),
 * at most `window` unacknowledged at a time, and the result carries only
 * `{"cairnPages": n, "points": m}`. The control plane compares the listing with its records only
 * when it holds all n pages. A listing that fits one page goes in the result as it always did,
 * so a control plane that knows no pages reads it as before.
 */
export async function pageListing(outcome: ResultOutcome, parts: PagingParts): Promise<ResultOutcome> {
  if (!('ok' in outcome)) return outcome;
  const output = outcome.ok.outputJson ?? '';
  const maxBytes = parts.maxBytes ?? SYNC_PAGE_BYTES;
  if (Buffer.byteLength(output, 'utf8') <= maxBytes) return outcome;
  const pages = listingPages(output, maxBytes);
  if (!pages) return outcome;
  const { spool, clock, signal, task } = parts;
  const window = parts.window ?? 16;
  const unacked: number[] = [];
  let page = 0;
  let points = 0;
  for (const { body, points: n } of pages) {
    for (;;) {
      while (unacked.length > 0 && !spool.holds(unacked[0]!)) unacked.shift();
      if (unacked.length < window) break;
      if (signal.aborted) break;
      await new Promise((resolve) => setTimeout(resolve, parts.pollMs ?? 10));
    }
    if (signal.aborted) return cancelled(signal);
    const data = `{"page":${page},"points":${body}}`;
    const rec = spool.append('event', {
      ...task,
      type: SYNC_PAGE_EVENT,
      message: '',
      dataJson: data,
      atMs: clock.now(),
    });
    unacked.push(rec.seq);
    page++;
    points += n;
  }
  return { ok: { outputJson: JSON.stringify({ cairnPages: page, points }) } };
}

function cancelled(signal: AbortSignal): ResultOutcome {
  const reason: unknown = signal.reason;
  const message = reason instanceof Error ? reason.message : 'the task was cancelled while its listing was being sent';
  return { error: { code: FailureCodes.CANCELLED, message, retryable: false } };
}
