import { principal } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonBody, jsonResponse, resource } from '../../openapi.js';
import { IdParam, PageQuery, pathId } from '../../schemas.js';
import { Schedule, ScheduleBody, UpcomingPage } from './schemas.js';

/** An instance's own backup schedule, where its offering allows user schedules; the next runs of every schedule. */
export function scheduleRoutes(deps: ApiDeps) {
  const api = resource('Schedules');
  const id = (raw: string) => pathId('instance', raw);

  api.put('/instances/{id}/schedule', {
    summary: "Set the instance's backup schedule (only where its offering allows user schedules)",
    request: { params: IdParam, ...jsonBody(ScheduleBody) },
    responses: { 200: jsonResponse(Schedule, 'the schedule') },
    handler: async (c) => {
      const view = await deps.schedules.put(principal(c), id(c.req.valid('param').id), c.req.valid('json'));
      return c.json(view, 200);
    },
  });

  api.get('/instances/{id}/schedule', {
    summary: "The instance's backup schedule and its next run (404 when it has none)",
    request: { params: IdParam },
    responses: { 200: jsonResponse(Schedule, 'the schedule') },
    handler: async (c) => c.json(await deps.schedules.get(principal(c), id(c.req.valid('param').id)), 200),
  });

  api.delete('/instances/{id}/schedule', {
    summary: "Remove the instance's backup schedule",
    request: { params: IdParam },
    responses: { 204: { description: 'removed' } },
    handler: async (c) => {
      await deps.schedules.delete(principal(c), id(c.req.valid('param').id));
      return c.body(null, 204);
    },
  });

  api.get('/schedules', {
    summary:
      "The next run of every schedule the caller's backups run on, soonest first: instances' own schedules, offerings' SLAs and backup jobs' schedules (a tenant: its own, and the SLAs of its instances' offerings)",
    request: { query: PageQuery },
    responses: { 200: jsonResponse(UpcomingPage, 'a page of next runs') },
    handler: async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.schedules.upcoming(principal(c), q));
      return c.json(page, 200);
    },
  });

  return api.app;
}
