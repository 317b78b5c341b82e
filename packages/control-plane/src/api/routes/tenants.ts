import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { isSpAdmin } from '../../domain/access.js';
import { ForbiddenError, NotFoundError } from '../../domain/errors.js';
import { principal, spAdminOnly, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, router } from '../openapi.js';
import { Id, IdParam, PageQuery, Tenant, TenantCreate, TenantPage, Token, TokenCreate } from '../schemas.js';
import { tenantView } from '../views.js';

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
      const page = await deps.tenants.list(c.req.valid('query'));
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

  return app;
}
