import { principal, spAdminOnly } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonBody, jsonResponse, resource } from '../../openapi.js';
import { IdParam, PageQuery } from '../../schemas.js';
import { pageView } from '../../views.js';
import {
  QuotaLimits,
  Quotas,
  Tenant,
  TenantCreate,
  TenantPage,
  Token,
  TokenCreate,
  TokenPage,
  TokenParams,
} from './schemas.js';
import { quotasView, tenantView, tokenView } from './views.js';

export function tenantRoutes(deps: ApiDeps) {
  const api = resource('Tenants');
  api.post('/tenants', {
    middleware: [spAdminOnly] as const,
    summary: 'Create a tenant (sp-admin)',
    request: jsonBody(TenantCreate),
    responses: { 201: jsonResponse(Tenant, 'the new tenant') },
    handler: async (c) => {
      const tenant = await deps.tenants.create(c.req.valid('json').name);
      return c.json(tenantView(tenant), 201, { Location: `/v1/tenants/${tenant.id}` });
    },
  });

  api.get('/tenants', {
    middleware: [spAdminOnly] as const,
    summary: 'List tenants (sp-admin)',
    request: { query: PageQuery },
    responses: { 200: jsonResponse(TenantPage, 'a page of tenants') },
    handler: async (c) =>
      c.json(pageView(await deps.cursors.page(c, c.req.valid('query'), (q) => deps.tenants.list(q)), tenantView), 200),
  });

  api.get('/tenants/{id}', {
    summary: 'Get a tenant (sp-admin, or its own members)',
    request: { params: IdParam },
    responses: { 200: jsonResponse(Tenant, 'the tenant') },
    handler: async (c) => c.json(tenantView(await deps.tenants.visible(principal(c), c.req.valid('param').id)), 200),
  });

  api.get('/tenants/{id}/quotas', {
    summary: 'A tenant’s count quotas: limit, usage and default of each (sp-admin, or its own members)',
    request: { params: IdParam },
    responses: { 200: jsonResponse(Quotas, 'the quotas') },
    handler: async (c) => c.json(quotasView(await deps.tenants.quotasOf(principal(c), c.req.valid('param').id)), 200),
  });

  api.put('/tenants/{id}/quotas', {
    middleware: [spAdminOnly] as const,
    summary: 'Set a tenant’s count quotas; null puts one back to its default (sp-admin)',
    request: { params: IdParam, ...jsonBody(QuotaLimits) },
    responses: { 200: jsonResponse(Quotas, 'the quotas now') },
    handler: async (c) => {
      const quotas = await deps.tenants.setQuotas(principal(c), c.req.valid('param').id, c.req.valid('json'));
      return c.json(quotasView(quotas), 200);
    },
  });

  api.post('/tenants/{id}/tokens', {
    summary: 'Issue an API token; the secret is shown only in this answer',
    request: { params: IdParam, ...jsonBody(TokenCreate) },
    responses: { 201: jsonResponse(Token, 'the token, with its secret') },
    handler: async (c) =>
      c.json(await deps.tenants.issueToken(principal(c), c.req.valid('param').id, c.req.valid('json')), 201),
  });

  api.get('/tenants/{id}/tokens', {
    summary: 'List a tenant’s API tokens, never their secrets (sp-admin, tenant-admin own)',
    request: { params: IdParam, query: PageQuery },
    responses: { 200: jsonResponse(TokenPage, 'a page of tokens') },
    handler: async (c) => {
      const tokens = await deps.tenants.tokens(principal(c), c.req.valid('param').id);
      return c.json(pageView(await deps.cursors.page(c, c.req.valid('query'), tokens), tokenView), 200);
    },
  });

  api.delete('/tenants/{id}/tokens/{tokenId}', {
    summary: 'Revoke an API token: it stops working at once (sp-admin, tenant-admin own)',
    request: { params: TokenParams },
    responses: { 204: { description: 'revoked' } },
    handler: async (c) => {
      const { id, tokenId } = c.req.valid('param');
      await deps.tenants.revokeToken(principal(c), id, tokenId);
      return c.body(null, 204);
    },
  });

  return api.app;
}
