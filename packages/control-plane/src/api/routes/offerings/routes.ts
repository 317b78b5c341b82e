import { z } from '@hono/zod-openapi';
import { principal, spAdminOnly } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonBody, jsonResponse, resource } from '../../openapi.js';
import { IdParam, PageQuery, pathId } from '../../schemas.js';
import { pageView } from '../../views.js';
import { Grant, GrantCreate, Offering, OfferingCreate, OfferingPage, OfferingPatch } from './schemas.js';
import { offeringView } from './views.js';

/** An offering id as the path gives it: one that cannot be an id is an unknown offering (404). */
const offeringId = (id: string) => pathId('offering', id);

export function offeringRoutes(deps: ApiDeps) {
  const api = resource('Offerings');

  api.post('/offerings', {
    middleware: [spAdminOnly] as const,
    summary: 'Create a backup offering (sp-admin); the creator’s tenant is granted it',
    request: jsonBody(OfferingCreate),
    responses: { 201: jsonResponse(Offering, 'the offering') },
    handler: async (c) => {
      const row = await deps.offerings.create(principal(c), c.req.valid('json'));
      return c.json(offeringView(row), 201, { Location: `/v1/offerings/${row.id}` });
    },
  });

  api.get('/offerings', {
    summary: 'List offerings: all for an sp-admin, the granted ones for a tenant',
    request: { query: PageQuery },
    responses: { 200: jsonResponse(OfferingPage, 'a page of offerings') },
    handler: async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.offerings.list(principal(c), q));
      return c.json(pageView(page, offeringView), 200);
    },
  });

  api.get('/offerings/{id}', {
    summary: 'Get an offering (a tenant: only if granted)',
    request: { params: IdParam },
    responses: { 200: jsonResponse(Offering, 'the offering') },
    handler: async (c) =>
      c.json(offeringView(await deps.offerings.visible(principal(c), offeringId(c.req.valid('param').id))), 200),
  });

  api.patch('/offerings/{id}', {
    middleware: [spAdminOnly] as const,
    summary:
      'Change an offering (sp-admin); a new SLA applies from its next fire, and reaches the providers that run schedules themselves',
    request: { params: IdParam, ...jsonBody(OfferingPatch) },
    responses: { 200: jsonResponse(Offering, 'the offering as changed') },
    handler: async (c) =>
      c.json(offeringView(await deps.offerings.update(offeringId(c.req.valid('param').id), c.req.valid('json'))), 200),
  });

  api.delete('/offerings/{id}', {
    middleware: [spAdminOnly] as const,
    summary: 'Delete an offering no instance is assigned to (sp-admin)',
    request: { params: IdParam },
    responses: { 204: { description: 'deleted' } },
    handler: async (c) => {
      await deps.offerings.delete(offeringId(c.req.valid('param').id));
      return c.body(null, 204);
    },
  });

  api.post('/offerings/{id}/grants', {
    middleware: [spAdminOnly] as const,
    summary: 'Grant an offering to a tenant (sp-admin)',
    request: { params: IdParam, ...jsonBody(GrantCreate) },
    responses: { 201: jsonResponse(Grant, 'the grant') },
    handler: async (c) =>
      c.json(await deps.offerings.grant(offeringId(c.req.valid('param').id), c.req.valid('json').tenantId), 201),
  });

  api.delete('/offerings/{id}/grants/{tenantId}', {
    middleware: [spAdminOnly] as const,
    summary: 'Withdraw an offering from a tenant (sp-admin)',
    request: {
      params: IdParam.extend({ tenantId: z.string().openapi({ param: { name: 'tenantId', in: 'path' } }) }),
    },
    responses: { 204: { description: 'withdrawn' } },
    handler: async (c) => {
      const params = c.req.valid('param');
      await deps.offerings.revoke(offeringId(params.id), params.tenantId);
      return c.body(null, 204);
    },
  });

  return api.app;
}
