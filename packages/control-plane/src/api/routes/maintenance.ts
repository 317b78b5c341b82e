import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { NotFoundError } from '../../domain/errors.js';
import type { MaintenanceScope } from '../../domain/maintenance.js';
import { principal, spAdminOnly, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, router } from '../openapi.js';
import { Id, IdParam, Maintenance, MaintenancePut, MaintenanceQuery, Problem, Zone, ZoneParam } from '../schemas.js';
import { maintenanceView } from '../views.js';

const tags = ['Maintenance'];
/** How long `?wait=ready` waits when no timeoutS is given. */
const DEFAULT_WAIT_S = 30;

const problem = (description: string) => ({
  content: { 'application/problem+json': { schema: Problem } },
  description,
});
const getResponses = {
  200: jsonResponse(Maintenance, 'the scope’s state (with wait=ready: once ready, or when the timeout passed)'),
  ...errorResponses,
  429: problem("the tenant's share of waiting requests on this control plane is taken (too_many_waiters)"),
};
const putResponses = { 200: jsonResponse(Maintenance, 'the scope’s state after the change'), ...errorResponses };

/** The three scopes, each with PUT (sp-admin) and GET (with `?wait=ready&timeoutS=`). */
export function maintenanceRoutes(deps: ApiDeps) {
  const app = router();
  const m = deps.maintenance;

  const get = async (c: Context<Env>, scope: MaintenanceScope, query: { wait?: 'ready'; timeoutS?: number }) => {
    const p = principal(c);
    const state =
      query.wait === 'ready' ? await m.waitReady(p, scope, query.timeoutS ?? DEFAULT_WAIT_S) : await m.get(p, scope);
    return c.json(maintenanceView(state, await deps.audiences.of(p)), 200);
  };
  const zoneScope = (zone: string): MaintenanceScope => {
    if (!Zone.safeParse(zone).success) throw new NotFoundError('zone', zone);
    return { kind: 'zone', zone };
  };
  const agentScope = (id: string): MaintenanceScope => {
    if (!Id.safeParse(id).success) throw new NotFoundError('agent', id);
    return { kind: 'agent', agentId: id };
  };

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'put',
      path: '/maintenance',
      tags,
      summary:
        'Turn maintenance of the whole service on or off: backups not started fail with the message, running ones complete (sp-admin)',
      request: jsonBody(MaintenancePut),
      responses: putResponses,
    }),
    async (c) =>
      c.json(
        maintenanceView(
          await m.set(principal(c), { kind: 'global' }, c.req.valid('json')),
          await deps.audiences.of(principal(c)),
        ),
        200,
      ),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/maintenance',
      tags,
      summary: 'Maintenance of the whole service, and whether it is ready (no backup running)',
      request: { query: MaintenanceQuery },
      responses: getResponses,
    }),
    async (c) => get(c, { kind: 'global' }, c.req.valid('query')),
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'put',
      path: '/zones/{zone}/maintenance',
      tags,
      summary: 'Turn maintenance of one zone on or off (sp-admin)',
      request: { params: ZoneParam, ...jsonBody(MaintenancePut) },
      responses: putResponses,
    }),
    async (c) =>
      c.json(
        maintenanceView(
          await m.set(principal(c), zoneScope(c.req.valid('param').zone), c.req.valid('json')),
          await deps.audiences.of(principal(c)),
        ),
        200,
      ),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/zones/{zone}/maintenance',
      tags,
      summary: 'Maintenance of one zone (a tenant: a zone where it has an offering)',
      request: { params: ZoneParam, query: MaintenanceQuery },
      responses: getResponses,
    }),
    async (c) => get(c, zoneScope(c.req.valid('param').zone), c.req.valid('query')),
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'put',
      path: '/agents/{id}/maintenance',
      tags,
      summary: 'Turn maintenance of one agent on or off; a drain set on its host stays until lifted there (sp-admin)',
      request: { params: IdParam, ...jsonBody(MaintenancePut) },
      responses: putResponses,
    }),
    async (c) =>
      c.json(
        maintenanceView(
          await m.set(principal(c), agentScope(c.req.valid('param').id), c.req.valid('json')),
          await deps.audiences.of(principal(c)),
        ),
        200,
      ),
  );
  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'get',
      path: '/agents/{id}/maintenance',
      tags,
      summary: 'Maintenance of one agent, set through the API or on its host (sp-admin)',
      request: { params: IdParam, query: MaintenanceQuery },
      responses: getResponses,
    }),
    async (c) => get(c, agentScope(c.req.valid('param').id), c.req.valid('query')),
  );

  return app;
}
