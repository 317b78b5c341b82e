import { principal } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonResponse, resource } from '../../openapi.js';
import { PageQuery } from '../../schemas.js';
import { Usage } from './schemas.js';

/** Billing figures: what each tenant keeps protected and stores. */
export function usageRoutes(deps: ApiDeps) {
  const api = resource('Usage');

  api.get('/usage', {
    summary:
      'Billing figures per tenant (sp-admin: every tenant; a tenant: its own): protected and unprotected instances, instances in RPO breach, restore points, stored and protected bytes',
    request: { query: PageQuery },
    responses: { 200: jsonResponse(Usage, 'a page of usage per tenant, in tenant id order') },
    handler: async (c) =>
      c.json(
        await deps.cursors.page(c, c.req.valid('query'), (q) => deps.records.usagePerTenant(principal(c), q)),
        200,
      ),
  });

  return api.app;
}
