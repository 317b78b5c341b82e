import type { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { NotFoundError } from '../../../domain/errors.js';
import type { MaintenanceScope } from '../../../domain/maintenance.js';
import { principal, spAdminOnly, type Env } from '../../auth.js';
import { commitsItself } from '../../idempotency.js';
import type { ApiDeps } from '../../context.js';
import { jsonBody, jsonResponse, problemResponse, resource } from '../../openapi.js';
import { IdParam, pathId, Zone, ZoneParam } from '../../schemas.js';
import { Maintenance, MaintenancePut, MaintenanceQuery } from './schemas.js';
import { maintenanceView } from './views.js';

/** How long `?wait=ready` waits when no timeoutS is given. */
const DEFAULT_WAIT_S = 30;

const getResponses = {
  200: jsonResponse(Maintenance, 'the scope’s state (with wait=ready: once ready, or when the timeout passed)'),
  429: problemResponse(
    "the tenant's share of waiting requests on this control plane is taken (too_many_waiters), or its request rate (too_many_requests)",
  ),
};
const putResponses = { 200: jsonResponse(Maintenance, 'the scope’s state after the change') };

/**
 * The three scopes, each with PUT (sp-admin) and GET (with `?wait=ready&timeoutS=`). A PUT's change
 * is one transaction of its own (`commitsItself`), run again when the store picks it as a deadlock
 * victim: turning maintenance on fails the queued backups and writes events while hundreds of
 * running backups report, and an admin's switch must not answer 503 for that.
 */
export function maintenanceRoutes(deps: ApiDeps) {
  const api = resource('Maintenance');
  const m = deps.maintenance;

  const get = async (c: Context<Env>, scope: MaintenanceScope, query: { wait?: 'ready'; timeoutS?: number }) => {
    const p = principal(c);
    const state =
      query.wait === 'ready' ? await m.waitReady(p, scope, query.timeoutS ?? DEFAULT_WAIT_S) : await m.get(p, scope);
    return c.json(maintenanceView(state, await deps.audiences.of(p)), 200);
  };
  const set = async (c: Context<Env>, scope: MaintenanceScope, body: z.output<typeof MaintenancePut>) => {
    const p = principal(c);
    return c.json(maintenanceView(await m.set(p, scope, body), await deps.audiences.of(p)), 200);
  };
  const zoneScope = (zone: string): MaintenanceScope => {
    if (!Zone.safeParse(zone).success) throw new NotFoundError('zone', zone);
    return { kind: 'zone', zone };
  };
  const agentScope = (id: string): MaintenanceScope => ({ kind: 'agent', agentId: pathId('agent', id) });

  api.put('/maintenance', {
    middleware: [spAdminOnly, commitsItself] as const,
    summary:
      'Turn maintenance of the whole service on or off: backups not started fail with the message, running ones complete (sp-admin)',
    request: jsonBody(MaintenancePut),
    responses: putResponses,
    handler: async (c) => set(c, { kind: 'global' }, c.req.valid('json')),
  });
  api.get('/maintenance', {
    summary: 'Maintenance of the whole service, and whether it is ready (no backup running)',
    request: { query: MaintenanceQuery },
    responses: getResponses,
    handler: async (c) => get(c, { kind: 'global' }, c.req.valid('query')),
  });

  api.put('/zones/{zone}/maintenance', {
    middleware: [spAdminOnly, commitsItself] as const,
    summary: 'Turn maintenance of one zone on or off (sp-admin)',
    request: { params: ZoneParam, ...jsonBody(MaintenancePut) },
    responses: putResponses,
    handler: async (c) => set(c, zoneScope(c.req.valid('param').zone), c.req.valid('json')),
  });
  api.get('/zones/{zone}/maintenance', {
    summary: 'Maintenance of one zone (a tenant: a zone where it has an offering)',
    request: { params: ZoneParam, query: MaintenanceQuery },
    responses: getResponses,
    handler: async (c) => get(c, zoneScope(c.req.valid('param').zone), c.req.valid('query')),
  });

  api.put('/agents/{id}/maintenance', {
    middleware: [spAdminOnly, commitsItself] as const,
    summary: 'Turn maintenance of one agent on or off; a drain set on its host stays until lifted there (sp-admin)',
    request: { params: IdParam, ...jsonBody(MaintenancePut) },
    responses: putResponses,
    handler: async (c) => set(c, agentScope(c.req.valid('param').id), c.req.valid('json')),
  });
  api.get('/agents/{id}/maintenance', {
    middleware: [spAdminOnly] as const,
    summary: 'Maintenance of one agent, set through the API or on its host (sp-admin)',
    request: { params: IdParam, query: MaintenanceQuery },
    responses: getResponses,
    handler: async (c) => get(c, agentScope(c.req.valid('param').id), c.req.valid('query')),
  });

  return api.app;
}
