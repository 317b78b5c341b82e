import { Hono } from 'hono';
import { z } from 'zod';
import { isSpAdmin } from '../../domain/access.js';
import { ConflictError, InputError, NotFoundError } from '../../domain/errors.js';
import { principal, tenantScope, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { idSchema, nameSchema, zoneSchema } from '../ids.js';
import { body, pageQuery, query } from '../problem.js';
import { instanceView, taskView } from '../views.js';

export function instanceRoutes(deps: ApiDeps) {
  const app = new Hono<Env>();
  const visible = (c: Parameters<typeof principal>[0], id: string) => {
    if (!idSchema.safeParse(id).success) throw new NotFoundError('instance', id);
    return deps.operations.visibleInstance(principal(c), id);
  };

  app.post('/instances', async (c) => {
    const p = principal(c);
    const input = await body(
      c,
      z
        .object({
          name: nameSchema,
          zone: zoneSchema,
          locator: z.unknown().refine((v) => v !== undefined, 'is required'),
          agentId: idSchema.nullable().optional(),
          tenantId: idSchema.optional(),
        })
        .strict(),
    );
    if (input.tenantId !== undefined && !isSpAdmin(p) && input.tenantId !== p.tenantId) {
      throw new InputError('tenantId may only be given by an sp-admin acting for a tenant', [
        { path: 'tenantId', message: 'not allowed' },
      ]);
    }
    const tenantId = input.tenantId ?? p.tenantId;
    if (!(await deps.tenants.get(tenantId)))
      throw new InputError(`tenant ${tenantId} does not exist`, [{ path: 'tenantId', message: 'unknown tenant' }]);
    if (input.agentId) {
      const agent = await deps.agents.get(input.agentId);
      if (!agent)
        throw new InputError(`agent ${input.agentId} does not exist`, [{ path: 'agentId', message: 'unknown agent' }]);
      if (agent.zone !== input.zone) {
        throw new InputError(`agent ${agent.id} is in zone ${agent.zone}, not ${input.zone}`, [
          { path: 'agentId', message: 'agent in another zone' },
        ]);
      }
    }
    const row = await deps.catalog.createInstance({
      tenantId,
      name: input.name,
      zone: input.zone,
      locator: input.locator,
      agentId: input.agentId ?? null,
    });
    return c.json(instanceView(row), 201, { Location: `/v1/instances/${row.id}` });
  });

  app.get('/instances', async (c) => {
    const page = await deps.catalog.listInstances(query(c, pageQuery), tenantScope(principal(c)));
    return c.json({ items: page.items.map(instanceView), nextCursor: page.nextCursor });
  });

  app.get('/instances/:id', async (c) => c.json(instanceView(await visible(c, c.req.param('id')))));

  app.delete('/instances/:id', async (c) => {
    const instance = await visible(c, c.req.param('id'));
    await deps.catalog.deleteInstance(instance.id);
    return c.body(null, 204);
  });

  app.put('/instances/:id/offering', async (c) => {
    const instance = await visible(c, c.req.param('id'));
    const input = await body(c, z.object({ offeringId: idSchema }).strict());
    const offering = await deps.catalog.getOffering(input.offeringId);
    if (!offering || !(await deps.catalog.isGranted(offering.id, instance.tenantId))) {
      throw new InputError(`offering ${input.offeringId} does not exist or is not granted to the instance's tenant`, [
        { path: 'offeringId', message: 'unknown or not granted' },
      ]);
    }
    if (offering.zone !== instance.zone) {
      throw new InputError(`offering ${offering.id} is in zone ${offering.zone}, the instance in ${instance.zone}`, [
        { path: 'offeringId', message: 'offering in another zone' },
      ]);
    }
    if (instance.offeringId && instance.offeringId !== offering.id) {
      throw new ConflictError(
        `instance ${instance.id} is already assigned to offering ${instance.offeringId}; remove it first`,
        'offering_assigned',
      );
    }
    await deps.catalog.setInstanceOffering(instance.id, offering.id);
    return c.json(instanceView({ ...instance, offeringId: offering.id }));
  });

  app.delete('/instances/:id/offering', async (c) => {
    const instance = await visible(c, c.req.param('id'));
    await deps.catalog.setInstanceOffering(instance.id, null);
    return c.body(null, 204);
  });

  app.post('/instances/:id/backups', async (c) => {
    const instance = await visible(c, c.req.param('id'));
    const hasBody = (c.req.header('content-length') ?? '0') !== '0';
    const input = hasBody
      ? await body(c, z.object({ mode: z.enum(['FULL', 'INCREMENT']).default('FULL') }).strict())
      : { mode: 'FULL' as const };
    const task = await deps.operations.backup(principal(c), instance.id, input.mode);
    return c.json(taskView(task), 202, { Location: `/v1/tasks/${task.id}` });
  });

  return app;
}
