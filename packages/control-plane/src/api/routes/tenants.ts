import { createRoute, type z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { isSpAdmin } from '../../domain/access.js';
import { isPerOffering, limitOf, QUOTA_NAMES, QUOTAS, type PerOfferingQuota } from '../../domain/quotas.js';
import { ForbiddenError, NotFoundError } from '../../domain/errors.js';
import { principal, spAdminOnly, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, router } from '../openapi.js';
import {
  Id,
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

export function tenantRoutes(deps: ApiDeps) {
  const app = router();
  const visible = async (c: Context<Env>, id: string) => {
    const p = principal(c);
    const tenant = Id.safeParse(id).success ? await deps.tenants.get(id) : undefined;
    if (!tenant || (!isSpAdmin(p) && p.tenantId !== tenant.id)) throw new NotFoundError('tenant', id);
    return tenant;
  };

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
    async (c) => c.json(tenantView(await visible(c, c.req.valid('param').id)), 200),
  );

  const quotasOf = async (tenantId: string) => {
    const overrides = await deps.quotas.overrides(tenantId);
    const used = await deps.quotas.usage(tenantId);
    const byOffering = [...(await deps.quotas.usageByOffering(tenantId))];
    const usageOf = (q: PerOfferingQuota) =>
      byOffering.map(([offeringId, u]) => ({
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
  };

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tenants/{id}/quotas',
      tags,
      summary: 'A tenant’s count quotas: limit, usage and default of each (sp-admin, or its own members)',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Quotas, 'the quotas'), ...errorResponses },
    }),
    async (c) => c.json(await quotasOf((await visible(c, c.req.valid('param').id)).id), 200),
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
      const tenant = await visible(c, c.req.valid('param').id);
      await deps.quotas.set(tenant.id, c.req.valid('json'));
      return c.json(await quotasOf(tenant.id), 200);
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
    async (c) => {
      const p = principal(c);
      const tenant = await visible(c, c.req.valid('param').id);
      if (!isSpAdmin(p) && p.role !== 'tenant-admin') throw new ForbiddenError('only a tenant-admin may issue tokens');
      const input = c.req.valid('json');
      const providerTenant = await deps.tenants.ensureProviderTenant();
      if (input.role === 'sp-admin' && (tenant.id !== providerTenant || !isSpAdmin(p))) {
        throw new ForbiddenError(
          'sp-admin tokens exist only in the service provider tenant and only an sp-admin issues them',
        );
      }
      if (input.role !== 'sp-admin' && tenant.id === providerTenant && !isSpAdmin(p)) {
        throw new ForbiddenError('only an sp-admin issues tokens of the service provider tenant');
      }
      return c.json(await deps.tenants.createToken(tenant.id, input.role, input.name), 201);
    },
  );

  /**
   * Who may see and revoke a tenant's tokens: an sp-admin, or a tenant-admin of that tenant
   * (never of the provider tenant, whose tokens only sp-admins manage, as they alone issue them).
   */
  const manageableTenant = async (c: Context<Env>, id: string) => {
    const p = principal(c);
    const tenant = await visible(c, id);
    if (isSpAdmin(p)) return tenant;
    if (p.role !== 'tenant-admin') throw new ForbiddenError('only a tenant-admin may list or revoke tokens');
    if (tenant.id === (await deps.tenants.ensureProviderTenant()))
      throw new ForbiddenError('only an sp-admin manages tokens of the service provider tenant');
    return tenant;
  };

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
      const tenant = await manageableTenant(c, c.req.valid('param').id);
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.tenants.listTokens(tenant.id, q));
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
      const tenant = await manageableTenant(c, id);
      const revoked = Id.safeParse(tokenId).success && (await deps.tenants.revokeToken(tenant.id, tokenId));
      if (!revoked) throw new NotFoundError('token', tokenId);
      return c.body(null, 204);
    },
  );

  return app;
}
