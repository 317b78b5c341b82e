import { createRoute, type z } from '@hono/zod-openapi';
import { isPerOffering, limitOf, QUOTA_NAMES, QUOTAS, type PerOfferingQuota } from '../../domain/quotas.js';
import { principal, spAdminOnly } from '../auth.js';
import type { TenantQuotas } from '../../service/tenants.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, router } from '../openapi.js';
import {
  IdParam,
  PageQuery,
  QuotaLimits,
  Quotas,
  Tenant,
  TenantCreate,
  TenantPage,
  Token,
  TokenCreate,
  TokenPage,
  TokenParams,
} from '../schemas.js';
import { tenantView, tokenView } from '../views.js';

const tags = ['Tenants'];

/** A tenant's quotas as the API shows them: limit, usage and default of each (per offering where it counts so). */
function quotasView({ overrides, used, byOffering }: TenantQuotas): z.infer<typeof Quotas> {
  const usageOf = (q: PerOfferingQuota) =>
    [...byOffering].map(([offeringId, u]) => ({
      offeringId,
      used: q === 'restorePointsPerOffering' ? u.restorePoints : u.bytes,
    }));
  return Object.fromEntries(
    QUOTA_NAMES.map((q) => [
      q,
      {
        limit: limitOf(q, overrides),
        used: used[q],
        default: QUOTAS[q].default,
        ...(isPerOffering(q) ? { usage: usageOf(q) } : {}),
      },
    ]),
  ) as z.infer<typeof Quotas>;
}

export function tenantRoutes(deps: ApiDeps) {
  const app = router();
  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'post',
      path: '/tenants',
      tags,
      summary: 'Create a tenant (sp-admin)',
      request: jsonBody(TenantCreate),
      responses: { 201: jsonResponse(Tenant, 'the new tenant'), ...errorResponses },
    }),
    async (c) => {
      const tenant = await deps.tenants.create(c.req.valid('json').name);
      return c.json(tenantView(tenant), 201, { Location: `/v1/tenants/${tenant.id}` });
    },
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'get',
      path: '/tenants',
      tags,
      summary: 'List tenants (sp-admin)',
      request: { query: PageQuery },
      responses: { 200: jsonResponse(TenantPage, 'a page of tenants'), ...errorResponses },
    }),
    async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.tenants.list(q));
      return c.json({ items: page.items.map(tenantView), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tenants/{id}',
      tags,
      summary: 'Get a tenant (sp-admin, or its own members)',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Tenant, 'the tenant'), ...errorResponses },
    }),
    async (c) => c.json(tenantView(await deps.tenants.visible(principal(c), c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tenants/{id}/quotas',
      tags,
      summary: 'A tenant’s count quotas: limit, usage and default of each (sp-admin, or its own members)',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Quotas, 'the quotas'), ...errorResponses },
    }),
    async (c) => c.json(quotasView(await deps.tenants.quotasOf(principal(c), c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'put',
      path: '/tenants/{id}/quotas',
      tags,
      summary: 'Set a tenant’s count quotas; null puts one back to its default (sp-admin)',
      request: { params: IdParam, ...jsonBody(QuotaLimits) },
      responses: { 200: jsonResponse(Quotas, 'the quotas now'), ...errorResponses },
    }),
    async (c) => {
      const quotas = await deps.tenants.setQuotas(principal(c), c.req.valid('param').id, c.req.valid('json'));
      return c.json(quotasView(quotas), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/tenants/{id}/tokens',
      tags,
      summary: 'Issue an API token; the secret is shown only in this answer',
      request: { params: IdParam, ...jsonBody(TokenCreate) },
      responses: { 201: jsonResponse(Token, 'the token, with its secret'), ...errorResponses },
    }),
    async (c) => c.json(await deps.tenants.issueToken(principal(c), c.req.valid('param').id, c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tenants/{id}/tokens',
      tags,
      summary: 'List a tenant’s API tokens, never their secrets (sp-admin, tenant-admin own)',
      request: { params: IdParam, query: PageQuery },
      responses: { 200: jsonResponse(TokenPage, 'a page of tokens'), ...errorResponses },
    }),
    async (c) => {
      const tokens = await deps.tenants.tokens(principal(c), c.req.valid('param').id);
      const page = await deps.cursors.page(c, c.req.valid('query'), tokens);
      return c.json({ items: page.items.map(tokenView), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/tenants/{id}/tokens/{tokenId}',
      tags,
      summary: 'Revoke an API token: it stops working at once (sp-admin, tenant-admin own)',
      request: { params: TokenParams },
      responses: { 204: { description: 'revoked' }, ...errorResponses },
    }),
    async (c) => {
      const { id, tokenId } = c.req.valid('param');
      await deps.tenants.revokeToken(principal(c), id, tokenId);
      return c.body(null, 204);
    },
  );

  return app;
}
