import type { Context } from 'hono';
import { principal, type Env } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonResponse, resource } from '../../openapi.js';
import { IdParam, PageQuery, pathId } from '../../schemas.js';
import { pageView } from '../../views.js';
import { ProgressPage, Task, TaskPage, TaskQuery } from './schemas.js';
import { progressView, taskLocation, taskView } from './views.js';

export function taskRoutes(deps: ApiDeps) {
  const api = resource('Tasks');
  const visible = (c: Context<Env>, id: string) => deps.operations.visibleTask(principal(c), pathId('task', id));

  api.get('/tasks', {
    summary: 'List tasks, newest first',
    request: { query: TaskQuery },
    responses: { 200: jsonResponse(TaskPage, 'a page of tasks') },
    handler: async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.records.listTasks(principal(c), q, q));
      const to = await deps.audiences.of(principal(c));
      return c.json(
        pageView(page, (t) => taskView(t, to)),
        200,
      );
    },
  });

  api.get('/tasks/{id}', {
    summary: 'Get a task: state, attempt, progress, error',
    request: { params: IdParam },
    responses: { 200: jsonResponse(Task, 'the task') },
    handler: async (c) =>
      c.json(taskView(await visible(c, c.req.valid('param').id), await deps.audiences.of(principal(c))), 200),
  });

  api.get('/tasks/{id}/progress', {
    summary: 'The stored progress reports of a task, in order',
    request: { params: IdParam, query: PageQuery },
    responses: { 200: jsonResponse(ProgressPage, 'a page of progress reports') },
    handler: async (c) => {
      const progress = await deps.records.progress(principal(c), pathId('task', c.req.valid('param').id));
      const page = await deps.cursors.page(c, c.req.valid('query'), progress);
      const to = await deps.audiences.of(principal(c));
      return c.json(
        pageView(page, (p) => progressView(p, to)),
        200,
      );
    },
  });

  api.post('/tasks/{id}/cancel', {
    summary: 'Cancel a task: at once when queued, through the plugin’s AbortSignal when running',
    request: { params: IdParam },
    responses: { 202: jsonResponse(Task, 'the task after the request') },
    handler: async (c) => {
      const task = await visible(c, c.req.valid('param').id);
      const updated = await deps.operations.cancel(principal(c), task.id);
      return c.json(taskView(updated, await deps.audiences.of(principal(c))), 202, taskLocation(task));
    },
  });

  return api.app;
}
