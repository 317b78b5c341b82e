import { Hono } from 'hono';
import { z } from 'zod';
import { NotFoundError } from '../../domain/errors.js';
import { TASK_KINDS, TASK_STATES } from '../../domain/task.js';
import { principal, tenantScope, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { idSchema } from '../ids.js';
import { pageQuery, query } from '../problem.js';
import { eventView, progressView, taskView } from '../views.js';

export function taskRoutes(deps: ApiDeps) {
  const app = new Hono<Env>();
  const visible = (c: Parameters<typeof principal>[0], id: string) => {
    if (!idSchema.safeParse(id).success) throw new NotFoundError('task', id);
    return deps.operations.visibleTask(principal(c), id);
  };

  app.get('/tasks', async (c) => {
    const q = query(
      c,
      pageQuery
        .extend({
          state: z.enum(TASK_STATES).optional(),
          kind: z.enum(TASK_KINDS).optional(),
          instanceId: idSchema.optional(),
        })
        .strict(),
    );
    const tenantId = tenantScope(principal(c));
    const page = await deps.tasks.list(q, {
      ...(tenantId !== undefined ? { tenantId } : {}),
      ...(q.state ? { state: q.state } : {}),
      ...(q.kind ? { kind: q.kind } : {}),
      ...(q.instanceId ? { instanceId: q.instanceId } : {}),
    });
    return c.json({ items: page.items.map(taskView), nextCursor: page.nextCursor });
  });

  app.get('/tasks/:id', async (c) => c.json(taskView(await visible(c, c.req.param('id')))));

  app.get('/tasks/:id/progress', async (c) => {
    const task = await visible(c, c.req.param('id'));
    return c.json({ items: (await deps.tasks.progress(task.id)).map(progressView), nextCursor: null });
  });

  app.post('/tasks/:id/cancel', async (c) => {
    const task = await visible(c, c.req.param('id'));
    const updated = await deps.operations.cancel(principal(c), task.id);
    return c.json(taskView(updated), 202, { Location: `/v1/tasks/${task.id}` });
  });

  app.get('/events', async (c) => {
    const q = query(
      c,
      z
        .object({
          after: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        })
        .strict(),
    );
    const rows = await deps.tasks.listEvents(q.after, q.limit, tenantScope(principal(c)));
    const last = rows[rows.length - 1];
    return c.json({ items: rows.map(eventView), nextCursor: last ? String(last.id) : null });
  });

  return app;
}
