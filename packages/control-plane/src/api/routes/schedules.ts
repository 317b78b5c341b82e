import { createRoute } from '@hono/zod-openapi';
import { NotFoundError } from '../../domain/errors.js';
import { principal } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, router } from '../openapi.js';
import { Id, IdParam, Schedule, ScheduleBody } from '../schemas.js';

const tags = ['Schedules'];

/** An instance's own backup schedule, where its offering allows user schedules. */
export function scheduleRoutes(deps: ApiDeps) {
  const app = router();
  const id = (raw: string) => {
    if (!Id.safeParse(raw).success) throw new NotFoundError('instance', raw);
    return raw;
  };

  app.openapi(
    createRoute({
      method: 'put',
      path: '/instances/{id}/schedule',
      tags,
      summary: "Set the instance's backup schedule (only where its offering allows user schedules)",
      request: { params: IdParam, ...jsonBody(ScheduleBody) },
      responses: { 200: jsonResponse(Schedule, 'the schedule'), ...errorResponses },
    }),
    async (c) => {
      const view = await deps.schedules.put(principal(c), id(c.req.valid('param').id), c.req.valid('json'));
      return c.json(view, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/instances/{id}/schedule',
      tags,
      summary: "The instance's backup schedule and its next run (404 when it has none)",
      request: { params: IdParam },
      responses: { 200: jsonResponse(Schedule, 'the schedule'), ...errorResponses },
    }),
    async (c) => c.json(await deps.schedules.get(principal(c), id(c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/instances/{id}/schedule',
      tags,
      summary: "Remove the instance's backup schedule",
      request: { params: IdParam },
      responses: { 204: { description: 'removed' }, ...errorResponses },
    }),
    async (c) => {
      await deps.schedules.delete(principal(c), id(c.req.valid('param').id));
      return c.body(null, 204);
    },
  );

  return app;
}
