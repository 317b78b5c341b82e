import { signal } from '@preact/signals';
import { createParser } from 'eventsource-parser';
import { storedToken } from './api.js';
import { rateBetween, type Sample } from './format.js';

/**
 * The live side of the console: one event stream per tab (`GET /v1/events/stream`), read with
 * fetch so that the token goes in the Authorization header (EventSource cannot send one, and a
 * token never goes in a URL). Pages read the signals below; nothing here renders.
 */

/** A task's latest progress as the stream sent it, with the rate measured between two reports. */
export interface LiveProgress {
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  etaSeconds: number | null;
  rate: number | undefined;
  sample: Sample;
}

/** Progress by task id, newest report each. */
export const progress = signal<ReadonlyMap<string, LiveProgress>>(new Map());
/** Bumped on every event of the log (task state changes, maintenance, jobs): pages reload what they show. */
export const changes = signal(0);
/** Bumped on a maintenance event: the banner reloads. */
export const maintenanceChanges = signal(0);
/** Whether the stream is up (shown to the user: a console that is not live says so). */
export const connected = signal(false);
/** The last events of the log, newest first (the Home feed). */
export const recent = signal<readonly { id: string; type: string; message: string; at: string }[]>([]);

const RECENT = 20;

function onProgress(data: Record<string, unknown>): void {
  const taskId = String(data['taskId']);
  const next = new Map(progress.value);
  const sample = { bytesDone: Number(data['bytesDone'] ?? 0), at: Date.parse(String(data['at'])) };
  const before = next.get(taskId);
  next.set(taskId, {
    percent: Number(data['percent'] ?? 0),
    bytesDone: sample.bytesDone,
    bytesTotal: Number(data['bytesTotal'] ?? 0),
    etaSeconds: typeof data['etaSeconds'] === 'number' ? data['etaSeconds'] : null,
    rate: rateBetween(before?.sample, sample) ?? before?.rate,
    sample,
  });
  progress.value = next;
}

function onEvent(type: string, data: Record<string, unknown>): void {
  if (type === 'task.progress') return onProgress(data);
  recent.value = [
    { id: String(data['id']), type, message: String(data['message'] ?? ''), at: String(data['at'] ?? '') },
    ...recent.value,
  ].slice(0, RECENT);
  if (type.startsWith('maintenance.')) maintenanceChanges.value++;
  changed();
}

/** How long events are gathered before pages reload: a burst of them costs one reload, not one each. */
const SETTLE_MS = 250;
let settling = false;

function changed(): void {
  if (settling) return;
  settling = true;
  setTimeout(() => {
    settling = false;
    changes.value++;
  }, SETTLE_MS);
}

/** What a reader of an event stream is told. */
export interface StreamHandlers {
  /** The stream is up (again): what happened while it was down is not in it, so reload. */
  open(): void;
  event(type: string, data: Record<string, unknown>): void;
  /** The stream dropped; it is retried unless aborted. */
  closed(): void;
  /** The token was refused: the stream is not retried. */
  unauthorized(): void;
  /** The API refused the stream's query (a malformed filter, a job or task not found): not retried. */
  refused(detail: string): void;
}

/**
 * Keeps a stream of `GET /v1/events/stream` (with `query`: its filters, where it starts) open
 * until `abort`, reconnecting after a drop (1 s, then up to 10 s) with `Last-Event-ID`, so that it
 * resumes after the last event seen.
 */
export async function readStream(query: string, abort: AbortSignal, on: StreamHandlers): Promise<void> {
  let lastId = '';
  let delay = 1000;
  while (!abort.aborted) {
    try {
      const headers: Record<string, string> = {
        Authorization: `Bearer ${storedToken() ?? ''}`,
        Accept: 'text/event-stream',
      };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const res = await fetch(`/v1/events/stream${query}`, { headers, signal: abort });
      if (res.status === 401) return on.unauthorized();
      if (res.status === 400 || res.status === 404) {
        const problem = (await res.json().catch(() => ({}))) as { detail?: string };
        return on.refused(`${problem.detail ?? res.statusText} (${res.status})`);
      }
      if (!res.ok || !res.body) throw new Error(`event stream: ${res.status}`);
      delay = 1000;
      on.open();
      const parser = createParser({
        onEvent(m) {
          if (m.id) lastId = m.id;
          on.event(m.event ?? 'message', JSON.parse(m.data) as Record<string, unknown>);
        },
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    } catch {
      // A drop, or the abort: the loop decides.
    }
    on.closed();
    if (abort.aborted) return;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}

/** The tab's own stream, live only, that feeds the signals above; `onUnauthorized` when the token is refused. */
export function follow(abort: AbortSignal, onUnauthorized: () => void): Promise<void> {
  return readStream('', abort, {
    open() {
      connected.value = true;
      changes.value++;
      maintenanceChanges.value++;
    },
    event: onEvent,
    closed() {
      connected.value = false;
    },
    unauthorized: onUnauthorized,
    refused() {
      connected.value = false;
    },
  });
}
