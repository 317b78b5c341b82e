import { Hono } from 'hono';
import { z } from 'zod';
import { isSpAdmin, ROLES } from '../../domain/access.js';
import { ForbiddenError, NotFoundError } from '../../domain/errors.js';
import { principal, requireSpAdmin, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { idSchema, nameSchema } from '../ids.js';
import { body, pageQuery, query } from '../problem.js';
import { tenantView } from '../views.js';

export function tenantRoutes(deps: ApiDeps) {
  const app = new Hono<Env>();

  app.post('/tenants', async (c) => {
    requireSpAdmin(c);
    const input = await body(c, z.object({ name: nameSchema }).strict());
    const tenant = await deps.tenants.create(input.name);
    return c.json(tenantView(tenant), 201, { Location: `/v1/tenants/${tenant.id}` });
  });

  app.get('/tenants', async (c) => {
    requireSpAdmin(c);
    const page = await deps.tenants.list(query(c, pageQuery));
    return c.json({ items: page.items.map(tenantView), nextCursor: page.nextCursor });
  });

  app.get('/tenants/:id', async (c) => {
    const p = principal(c);
    const id = c.req.param('id');
    const tenant = idSchema.safeParse(id).success ? await deps.tenants.get(id) : undefined;
    if (!tenant || (!isSpAdmin(p) && p.tenantId !== tenant.id)) throw new NotFoundError('tenant', id);
    return c.json(tenantView(tenant));
  });

  app.post('/tenants/:id/tokens', async (c) => {
    const p = principal(c);
    const id = c.req.param('id');
    const tenant = idSchema.safeParse(id).success ? await deps.tenants.get(id) : undefined;
    if (!tenant || (!isSpAdmin(p) && p.tenantId !== tenant.id)) throw new NotFoundError('tenant', id);
    if (!isSpAdmin(p) && p.role !== 'tenant-admin') throw new ForbiddenError('only a tenant-admin may issue tokens');
    const input = await body(c, z.object({ role: z.enum(ROLES), name: nameSchema }).strict());
    const providerTenant = await deps.tenants.ensureProviderTenant();
    if (input.role === 'sp-admin' && (tenant.id !== providerTenant || !isSpAdmin(p))) {
      throw new ForbiddenError(
        'sp-admin tokens exist only in the service provider tenant and only an sp-admin issues them',
      );
    }
    if (input.role !== 'sp-admin' && tenant.id === providerTenant && !isSpAdmin(p)) {
      throw new ForbiddenError('only an sp-admin issues tokens of the service provider tenant');
    }
    const token = await deps.tenants.createToken(tenant.id, input.role, input.name);
    return c.json(token, 201);
  });

  return app;
}
