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
import { eventView, progressView, taskView } from '../views.js';
import type { Context } from 'hono';

const tags = ['Tasks'];
const STREAM_KEEPALIVE_MS = 15_000;
const STREAM_WRITE_TIMEOUT_MS = 30_000;

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
      const page = await deps.tasks.list(q, {
        ...(tenantId !== undefined ? { tenantId } : {}),
        ...(q.state ? { state: q.state } : {}),
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.instanceId ? { instanceId: q.instanceId } : {}),
      });
      return c.json({ items: page.items.map(taskView), nextCursor: page.nextCursor }, 200);
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
    async (c) => c.json(taskView(await visible(c, c.req.valid('param').id)), 200),
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
      const page = await deps.tasks.progress(task.id, c.req.valid('query'));
      return c.json({ items: page.items.map(progressView), nextCursor: page.nextCursor }, 200);
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
      return c.json(taskView(updated), 202, { Location: `/v1/tasks/${task.id}` });
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
      const rows = await deps.tasks.listEvents(after, q.limit, tenantScope(principal(c)));
      const page = eventPageOf(rows, q.limit);
      return c.json({ items: page.items.map(eventView), nextCursor: page.nextCursor }, 200);
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
      const tenantId = tenantScope(principal(c));
      const header = c.req.header('last-event-id');
      const after = header !== undefined && /^\d+$/.test(header) ? Number(header) : c.req.valid('query').after;
      // Aborted when the client goes away; a write to a client that left would otherwise wait forever.
      const clientGone = c.req.raw.signal;
      return streamSSE(c, async (stream) => {
        const gone = new AbortController();
        clientGone.addEventListener('abort', () => gone.abort(), { once: true });
        stream.onAbort(() => gone.abort());
        const ended = new Promise<void>((resolve) =>
          gone.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        // A write that a vanished client never takes ends the stream instead of hanging it.
        const send = async (write: Promise<unknown>) => {
          let timer: NodeJS.Timeout | undefined;
          const stuck = new Promise<'stuck'>(
            (resolve) => (timer = setTimeout(() => resolve('stuck'), STREAM_WRITE_TIMEOUT_MS)),
          );
          const outcome = await Promise.race([write, ended, stuck]);
          clearTimeout(timer);
          if (outcome === 'stuck') gone.abort();
        };
        // Ends when the client goes away, or when the control plane shuts down (the feed closes).
        for await (const batch of deps.feed.stream(after, tenantId, gone.signal, STREAM_KEEPALIVE_MS)) {
          if (batch.length === 0) await send(stream.write(': keep-alive\n\n'));
          for (const row of batch) {
            if (gone.signal.aborted) break;
            await send(stream.writeSSE({ id: String(row.id), event: row.type, data: JSON.stringify(eventView(row)) }));
          }
          if (gone.signal.aborted) break;
        }
      }) as never;
    },
  );

  return app;
}
