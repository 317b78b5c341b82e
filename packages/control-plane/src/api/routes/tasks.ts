import { createRoute, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { decodeEventCursor, eventPageOf } from '../../store/page.js';
import { principal, tenantScope, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonResponse, router } from '../openapi.js';
import {
  EventPage,
  EventQuery,
  EventStreamQuery,
  Id,
  IdParam,
  PageQuery,
  ProgressPage,
  Task,
  TaskPage,
  TaskQuery,
} from '../schemas.js';
import type { Audience } from '../audience.js';
import { eventView, progressView, taskView } from '../views.js';
import type { Context } from 'hono';
import type { Selectable } from 'kysely';
import type { EventRow } from '../../store/schema.js';

const tags = ['Tasks'];
const STREAM_KEEPALIVE_MS = 15_000;
const STREAM_WRITE_TIMEOUT_MS = 30_000;
/** Events are written in chunks of about this size: few writes, little held per connection. */
const STREAM_CHUNK_CHARS = 64 * 1024;

/** One SSE message; a line break in the type would end the field early, so it becomes a space. */
function sseMessage(row: Selectable<EventRow>, to: Audience): string {
  return `event: ${row.type.replace(/[\r\n]/g, ' ')}\ndata: ${JSON.stringify(eventView(row, to))}\nid: ${row.id}\n\n`;
}

export function taskRoutes(deps: ApiDeps) {
  const app = router();
  const visible = (c: Context<Env>, id: string) => {
    if (!Id.safeParse(id).success) throw new NotFoundError('task', id);
    return deps.operations.visibleTask(principal(c), id);
  };

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tasks',
      tags,
      summary: 'List tasks, newest first',
      request: { query: TaskQuery },
      responses: { 200: jsonResponse(TaskPage, 'a page of tasks'), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const tenantId = tenantScope(principal(c));
      const page = await deps.cursors.page(c, q, (q) =>
        deps.tasks.list(q, {
          ...(tenantId !== undefined ? { tenantId } : {}),
          ...(q.state ? { state: q.state } : {}),
          ...(q.kind ? { kind: q.kind } : {}),
          ...(q.instanceId ? { instanceId: q.instanceId } : {}),
        }),
      );
      const to = await deps.audiences.of(principal(c));
      return c.json({ items: page.items.map((t) => taskView(t, to)), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tasks/{id}',
      tags,
      summary: 'Get a task: state, attempt, progress, error',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Task, 'the task'), ...errorResponses },
    }),
    async (c) =>
      c.json(taskView(await visible(c, c.req.valid('param').id), await deps.audiences.of(principal(c))), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tasks/{id}/progress',
      tags,
      summary: 'The stored progress reports of a task, in order',
      request: { params: IdParam, query: PageQuery },
      responses: { 200: jsonResponse(ProgressPage, 'a page of progress reports'), ...errorResponses },
    }),
    async (c) => {
      const task = await visible(c, c.req.valid('param').id);
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.tasks.progress(task.id, q));
      const to = await deps.audiences.of(principal(c));
      return c.json({ items: page.items.map((p) => progressView(p, to)), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/tasks/{id}/cancel',
      tags,
      summary: 'Cancel a task: at once when queued, through the plugin’s AbortSignal when running',
      request: { params: IdParam },
      responses: { 202: jsonResponse(Task, 'the task after the request'), ...errorResponses },
    }),
    async (c) => {
      const task = await visible(c, c.req.valid('param').id);
      const updated = await deps.operations.cancel(principal(c), task.id);
      return c.json(taskView(updated, await deps.audiences.of(principal(c))), 202, {
        Location: `/v1/tasks/${task.id}`,
      });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/events',
      tags: ['Events'],
      summary: 'The event log after an id (pass nextCursor as `cursor` to resume)',
      request: { query: EventQuery },
      responses: { 200: jsonResponse(EventPage, 'a page of events'), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      if (q.cursor !== undefined && q.after !== undefined) {
        throw new InputError('give either cursor or after, not both', [
          { path: 'query.after', message: 'not allowed with cursor' },
        ]);
      }
      const after = decodeEventCursor(q.cursor) ?? q.after ?? 0;
      const rows = await deps.events.list(after, q.limit, tenantScope(principal(c)));
      const page = eventPageOf(rows, q.limit);
      const to = await deps.audiences.of(principal(c));
      return c.json({ items: page.items.map((e) => eventView(e, to)), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/events/stream',
      tags: ['Events'],
      summary: 'The event log as a live stream (server-sent events); resumes after Last-Event-ID or ?after=',
      request: { query: EventStreamQuery },
      responses: {
        200: { content: { 'text/event-stream': { schema: z.string() } }, description: 'one SSE message per event' },
        ...errorResponses,
      },
    }),
    (c) => {
      const p = principal(c);
      const tenantId = tenantScope(p);
      const header = c.req.header('last-event-id');
      const after = header !== undefined && /^\d+$/.test(header) ? Number(header) : c.req.valid('query').after;
      // Aborted when the client goes away; a write to a client that left would otherwise wait forever.
      const clientGone = c.req.raw.signal;
      return streamSSE(c, async (stream) => {
        const gone = new AbortController();
        clientGone.addEventListener('abort', () => gone.abort(), { once: true });
        stream.onAbort(() => gone.abort());
        // A write resolves only once the client has taken the one before (backpressure), and a
        // write that a vanished or stalled client never takes ends the stream instead of hanging it.
        const send = (text: string) =>
          new Promise<void>((resolve) => {
            if (gone.signal.aborted) return resolve();
            const timer = setTimeout(() => gone.abort(), STREAM_WRITE_TIMEOUT_MS);
            const done = () => {
              clearTimeout(timer);
              gone.signal.removeEventListener('abort', done);
              resolve();
            };
            gone.signal.addEventListener('abort', done, { once: true });
            void stream.write(text).then(done);
          });
        const sub = await deps.feed.open(after, tenantId);
        try {
          // An id without data moves the client's Last-Event-ID to where this stream starts.
          await send(`id: ${sub.start}\n\n`);
          // Ends when the client goes away, or when the control plane shuts down (the feed closes).
          for await (const batch of sub.batches(gone.signal, STREAM_KEEPALIVE_MS)) {
            if (gone.signal.aborted) break;
            if (batch.length === 0) await send(': keep-alive\n\n');
            // Per batch: an endpoint changed meanwhile is hidden from the next event on.
            const to = await deps.audiences.of(p);
            let chunk = '';
            for (const row of batch) {
              chunk += sseMessage(row, to);
              if (chunk.length < STREAM_CHUNK_CHARS) continue;
              await send(chunk);
              chunk = '';
              if (gone.signal.aborted) break;
            }
            if (chunk && !gone.signal.aborted) await send(chunk);
          }
        } finally {
          sub.close();
        }
      }) as never;
    },
  );

  return app;
}
