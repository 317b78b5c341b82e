import { createRoute, z } from '@hono/zod-openapi';
import { NotFoundError } from '../../domain/errors.js';
import { principal, spAdminOnly } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, router } from '../openapi.js';
import {
  Grant,
  GrantCreate,
  Id,
  IdParam,
  Offering,
  OfferingCreate,
  OfferingPage,
  OfferingPatch,
  PageQuery,
} from '../schemas.js';
import { offeringView } from '../views.js';

const tags = ['Offerings'];

/** An offering id as the path gives it: one that cannot be an id is an unknown offering (404). */
function offeringId(id: string): string {
  if (!Id.safeParse(id).success) throw new NotFoundError('offering', id);
  return id;
}

export function offeringRoutes(deps: ApiDeps) {
  const app = router();

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'post',
      path: '/offerings',
      tags,
      summary: 'Create a backup offering (sp-admin); the creator’s tenant is granted it',
      request: jsonBody(OfferingCreate),
      responses: { 201: jsonResponse(Offering, 'the offering'), ...errorResponses },
    }),
    async (c) => {
      const row = await deps.offerings.create(principal(c), c.req.valid('json'));
      return c.json(offeringView(row), 201, { Location: `/v1/offerings/${row.id}` });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/offerings',
      tags,
      summary: 'List offerings: all for an sp-admin, the granted ones for a tenant',
      request: { query: PageQuery },
      responses: { 200: jsonResponse(OfferingPage, 'a page of offerings'), ...errorResponses },
    }),
    async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.offerings.list(principal(c), q));
      return c.json({ items: page.items.map(offeringView), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/offerings/{id}',
      tags,
      summary: 'Get an offering (a tenant: only if granted)',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Offering, 'the offering'), ...errorResponses },
    }),
    async (c) =>
      c.json(offeringView(await deps.offerings.visible(principal(c), offeringId(c.req.valid('param').id))), 200),
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'patch',
      path: '/offerings/{id}',
      tags,
      summary:
        'Change an offering (sp-admin); a new SLA applies from its next fire, and reaches the providers that run schedules themselves',
      request: { params: IdParam, ...jsonBody(OfferingPatch) },
      responses: { 200: jsonResponse(Offering, 'the offering as changed'), ...errorResponses },
    }),
    async (c) =>
      c.json(offeringView(await deps.offerings.update(offeringId(c.req.valid('param').id), c.req.valid('json'))), 200),
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'delete',
      path: '/offerings/{id}',
      tags,
      summary: 'Delete an offering no instance is assigned to (sp-admin)',
      request: { params: IdParam },
      responses: { 204: { description: 'deleted' }, ...errorResponses },
    }),
    async (c) => {
      await deps.offerings.delete(offeringId(c.req.valid('param').id));
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'post',
      path: '/offerings/{id}/grants',
      tags,
      summary: 'Grant an offering to a tenant (sp-admin)',
      request: { params: IdParam, ...jsonBody(GrantCreate) },
      responses: { 201: jsonResponse(Grant, 'the grant'), ...errorResponses },
    }),
    async (c) =>
      c.json(await deps.offerings.grant(offeringId(c.req.valid('param').id), c.req.valid('json').tenantId), 201),
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'delete',
      path: '/offerings/{id}/grants/{tenantId}',
      tags,
      summary: 'Withdraw an offering from a tenant (sp-admin)',
      request: {
        params: IdParam.extend({ tenantId: z.string().openapi({ param: { name: 'tenantId', in: 'path' } }) }),
      },
      responses: { 204: { description: 'withdrawn' }, ...errorResponses },
    }),
    async (c) => {
      const params = c.req.valid('param');
      await deps.offerings.revoke(offeringId(params.id), params.tenantId);
      return c.body(null, 204);
    },
  );

  return app;
}
