import { Hono } from 'hono';
import { z } from 'zod';
import { isSpAdmin } from '../../domain/access.js';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { principal, requireSpAdmin, tenantScope, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { idSchema, nameSchema, zoneSchema } from '../ids.js';
import { body, pageQuery, query } from '../problem.js';
import { offeringView } from '../views.js';

const cronSchema = z
  .string()
  .trim()
  .regex(/^(\S+\s+){4,5}\S+$/, 'must be a cron expression with 5 or 6 fields');

export function offeringRoutes(deps: ApiDeps) {
  const app = new Hono<Env>();

  const offering = async (id: string) => {
    const row = idSchema.safeParse(id).success ? await deps.catalog.getOffering(id) : undefined;
    if (!row) throw new NotFoundError('offering', id);
    return row;
  };

  app.post('/offerings', async (c) => {
    const p = requireSpAdmin(c);
    const input = await body(
      c,
      z
        .object({
          name: nameSchema,
          description: z.string().max(2000).optional(),
          zone: zoneSchema,
          providerId: idSchema,
          externalId: z.string().min(1).max(255).nullable().optional(),
          allowAdhoc: z.boolean(),
          allowUserSchedules: z.boolean(),
          sla: z
            .object({
              cron: cronSchema,
              timezone: z.string().min(1).optional(),
              keepLast: z.number().int().min(1).max(10_000),
              rpoMinutes: z.number().int().min(1).optional(),
            })
            .strict()
            .nullable()
            .optional(),
        })
        .strict(),
    );
    const provider = await deps.catalog.getProvider(input.providerId);
    if (!provider)
      throw new InputError(`provider connection ${input.providerId} does not exist`, [
        { path: 'providerId', message: 'unknown provider connection' },
      ]);
    if (provider.zone !== input.zone) {
      throw new InputError(`provider connection ${provider.id} is in zone ${provider.zone}, not ${input.zone}`, [
        { path: 'zone', message: `must match the provider connection's zone (${provider.zone})` },
      ]);
    }
    const row = await deps.catalog.createOffering({
      tenantId: p.tenantId,
      name: input.name,
      description: input.description ?? '',
      zone: input.zone,
      providerId: provider.id,
      externalId: input.externalId ?? null,
      allowAdhoc: input.allowAdhoc,
      allowUserSchedules: input.allowUserSchedules,
      sla: input.sla ?? null,
    });
    return c.json(offeringView(row), 201, { Location: `/v1/offerings/${row.id}` });
  });

  app.get('/offerings', async (c) => {
    const p = principal(c);
    const page = await deps.catalog.listOfferings(query(c, pageQuery), tenantScope(p));
    return c.json({ items: page.items.map(offeringView), nextCursor: page.nextCursor });
  });

  app.get('/offerings/:id', async (c) => {
    const p = principal(c);
    const row = await offering(c.req.param('id'));
    if (!isSpAdmin(p) && !(await deps.catalog.isGranted(row.id, p.tenantId)))
      throw new NotFoundError('offering', row.id);
    return c.json(offeringView(row));
  });

  app.delete('/offerings/:id', async (c) => {
    requireSpAdmin(c);
    const row = await offering(c.req.param('id'));
    await deps.catalog.deleteOffering(row.id);
    return c.body(null, 204);
  });

  app.post('/offerings/:id/grants', async (c) => {
    requireSpAdmin(c);
    const row = await offering(c.req.param('id'));
    const input = await body(c, z.object({ tenantId: idSchema }).strict());
    if (!(await deps.tenants.get(input.tenantId))) {
      throw new InputError(`tenant ${input.tenantId} does not exist`, [
        { path: 'tenantId', message: 'unknown tenant' },
      ]);
    }
    await deps.catalog.grant(row.id, input.tenantId);
    return c.json({ offeringId: row.id, tenantId: input.tenantId }, 201);
  });

  app.delete('/offerings/:id/grants/:tenantId', async (c) => {
    requireSpAdmin(c);
    const row = await offering(c.req.param('id'));
    await deps.catalog.revoke(row.id, c.req.param('tenantId'));
    return c.body(null, 204);
  });

  return app;
}
