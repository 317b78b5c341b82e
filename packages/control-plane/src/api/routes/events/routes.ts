import type { Socket } from 'node:net';
import type { HttpBindings } from '@hono/node-server';
import { z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type { Selectable } from 'kysely';
import { tenantScope } from '../../../domain/access.js';
import { InputError } from '../../../domain/errors.js';
import { isProgress, PROGRESS_EVENT, type FeedItem, type ProgressMessage } from '../../../service/event-feed.js';
import type { EventFilter } from '../../../store/event-repository.js';
import { decodeEventCursor, eventPageOf } from '../../../store/page.js';
import type { EventRow } from '../../../store/schema.js';
import type { Audience } from '../../audience.js';
import { principal } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonResponse, problemResponse, resource } from '../../openapi.js';
import { pageView } from '../../views.js';
import { EventPage, EventQuery, EventStreamQuery } from './schemas.js';
import { eventView, liveProgressView } from './views.js';

const STREAM_KEEPALIVE_MS = 15_000;
/** Events are written in chunks of about this many bytes: few writes, little held per connection. */
const STREAM_CHUNK_BYTES = 16 * 1024;

/** Drops a connection at once, unsent data and all (a TLS socket cannot send a reset: it is closed). */
function reset(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/**
 * A live event's row is shared by every stream it goes to: its message is made and encoded once
 * per audience (an sp-admin's, and the tenants' while the SP's endpoints stay the same).
 */
const sseMessages = new WeakMap<Selectable<EventRow>, Map<string, Buffer>>();

function sseMessage(item: FeedItem, to: Audience): Buffer {
  if (isProgress(item)) return progressMessage(item, to);
  const row = item;
  let byAudience = sseMessages.get(row);
  if (byAudience === undefined) sseMessages.set(row, (byAudience = new Map()));
  let bytes = byAudience.get(to.key);
  if (bytes === undefined) {
    const text = `event: ${row.type.replace(/[\r\n]/g, ' ')}\ndata: ${JSON.stringify(eventView(row, to))}\nid: ${row.id}\n\n`;
    bytes = Buffer.from(text, 'utf8');
    byAudience.set(to.key, bytes);
  }
  return bytes;
}

/** A task's live progress: no `id:` line, so a client's Last-Event-ID stays on the log. */
function progressMessage(p: ProgressMessage, to: Audience): Buffer {
  return Buffer.from(`event: ${PROGRESS_EVENT}\ndata: ${JSON.stringify(liveProgressView(p.report, to))}\n\n`, 'utf8');
}

/** The event log: a page of it, and a live stream of it. */
export function eventRoutes(deps: ApiDeps) {
  const api = resource('Events');
  const FORGOTTEN =
    'events_forgotten: events after the given id are no longer kept (CAIRN_EVENT_HISTORY_DAYS); `after` in the body names where the kept log begins: read again from there';

  api.get('/events', {
    summary: 'The event log after an id (pass nextCursor as `cursor` to resume)',
    request: { query: EventQuery },
    responses: {
      200: jsonResponse(EventPage, 'a page of events'),
      410: problemResponse(FORGOTTEN),
    },
    handler: async (c) => {
      const q = c.req.valid('query');
      if (q.cursor !== undefined && q.after !== undefined) {
        throw new InputError('give either cursor or after, not both', [
          { path: 'query.after', message: 'not allowed with cursor' },
        ]);
      }
      const after = decodeEventCursor(q.cursor) ?? q.after ?? 0;
      const page = eventPageOf(await deps.records.events(principal(c), after, q.limit), after);
      const to = await deps.audiences.of(principal(c));
      return c.json(
        pageView(page, (e) => eventView(e, to)),
        200,
      );
    },
  });

  api.get('/events/stream', {
    summary: 'The event log as a live stream (server-sent events); resumes after Last-Event-ID or ?after=',
    request: { query: EventStreamQuery },
    responses: {
      200: { content: { 'text/event-stream': { schema: z.string() } }, description: 'one SSE message per event' },
      410: problemResponse(FORGOTTEN),
      429: problemResponse(
        'too_many_streams: the token or its tenant already holds as many streams as allowed (`quota` names which); or too_many_requests: its tenant passed its request rate; see Retry-After',
      ),
    },
    handler: async (c) => {
      const p = principal(c);
      const header = c.req.header('last-event-id');
      const q = c.req.valid('query');
      const after = header !== undefined && /^\d+$/.test(header) ? Number(header) : q.after;
      // A task or job the caller cannot see is unknown (404), as everywhere: nothing tells it exists.
      if (q.taskId !== undefined) await deps.operations.visibleTask(p, q.taskId);
      if (q.jobId !== undefined) await deps.backupJobs.visible(p, q.jobId);
      if (q.instanceId !== undefined) await deps.operations.visibleInstance(p, q.instanceId);
      // A tenant's stream is what that tenant reads: the sp-admin may pick one, a tenant only its own.
      if (q.tenantId !== undefined) await deps.tenants.visible(p, q.tenantId);
      const scope = q.tenantId ?? tenantScope(p);
      const filter: EventFilter = {
        ...(q.taskId !== undefined ? { taskId: q.taskId } : {}),
        ...(q.jobId !== undefined ? { jobId: q.jobId } : {}),
        ...(q.instanceId !== undefined ? { instanceId: q.instanceId } : {}),
        ...(q.type !== undefined ? { typePrefix: q.type } : {}),
      };
      // Before the answer starts: a stream over its token's or tenant's cap is a 429 problem.
      const sub = await deps.feed.open(after, scope, p, filter);
      const socket = (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket;
      const stallMs = deps.config.streamStallMs;
      // Aborted when the client goes away; a write to a client that left would otherwise wait forever.
      const clientGone = c.req.raw.signal;
      return streamSSE(c, async (stream) => {
        const gone = new AbortController();
        clientGone.addEventListener('abort', () => gone.abort(), { once: true });
        if (clientGone.aborted) gone.abort();
        stream.onAbort(() => gone.abort());
        // A write resolves only once the client has taken the one before (backpressure). One still
        // waiting after `stallMs` means the client takes nothing: its connection is reset, which
        // frees what it holds here and in the kernel at once (ending the answer would wait for the
        // client forever).
        const send = (data: string | Uint8Array) =>
          new Promise<void>((resolve) => {
            if (gone.signal.aborted) return resolve();
            const timer = setTimeout(() => {
              deps.metrics.streamsStalled.inc();
              gone.abort();
              if (socket) reset(socket);
            }, stallMs);
            const done = () => {
              clearTimeout(timer);
              gone.signal.removeEventListener('abort', done);
              resolve();
            };
            gone.signal.addEventListener('abort', done, { once: true });
            void stream.write(data).then(done);
          });
        try {
          // An id without data moves the client's Last-Event-ID to where this stream starts.
          await send(`id: ${sub.start}\n\n`);
          // Ends when the client goes away, or when the control plane shuts down (the feed closes).
          for await (const batch of sub.batches(gone.signal, STREAM_KEEPALIVE_MS)) {
            if (gone.signal.aborted) break;
            if (batch.length === 0) await send(': keep-alive\n\n');
            // Per batch: an endpoint changed meanwhile is hidden from the next event on.
            const to = await deps.audiences.of(p);
            let parts: Buffer[] = [];
            let size = 0;
            const flush = async () => {
              const chunk = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
              parts = [];
              size = 0;
              await send(chunk);
            };
            for (const row of batch) {
              const message = sseMessage(row, to);
              parts.push(message);
              size += message.byteLength;
              if (size < STREAM_CHUNK_BYTES) continue;
              await flush();
              if (gone.signal.aborted) break;
            }
            if (size > 0 && !gone.signal.aborted) await flush();
          }
        } finally {
          sub.close();
        }
      }) as never;
    },
  });

  return api.app;
}
