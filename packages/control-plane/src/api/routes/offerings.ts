import { createRoute, z } from '@hono/zod-openapi';
import { isSpAdmin } from '../../domain/access.js';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { principal, spAdminOnly, tenantScope } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, router } from '../openapi.js';
import { assertValidSchedule } from '../../service/schedules.js';
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

export function offeringRoutes(deps: ApiDeps) {
  const app = router();

  const offering = async (id: string) => {
    const row = Id.safeParse(id).success ? await deps.catalog.getOffering(id) : undefined;
    if (!row) throw new NotFoundError('offering', id);
    return row;
  };

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
      const p = principal(c);
      const input = c.req.valid('json');
      const provider = await deps.catalog.getProvider(input.providerId);
      if (!provider) {
        throw new InputError(`provider connection ${input.providerId} does not exist`, [
          { path: 'providerId', message: 'unknown provider connection' },
        ]);
      }
      if (provider.zone !== input.zone) {
        throw new InputError(`provider connection ${provider.id} is in zone ${provider.zone}, not ${input.zone}`, [
          { path: 'zone', message: `must match the provider connection's zone (${provider.zone})` },
        ]);
      }
      if (input.sla)
        assertValidSchedule(input.sla.cron, input.sla.timezone ?? 'UTC', deps.scheduleClock(), { prefix: 'sla.' });
      const row = await deps.catalog.createOffering({
        tenantId: p.tenantId,
        name: input.name,
        description: input.description ?? '',
        zone: input.zone,
        providerId: provider.id,
        externalId: input.externalId ?? null,
        allowAdhoc: input.allowAdhoc,
        allowUserSchedules: input.allowUserSchedules,
        ...(input.minUserScheduleIntervalS !== undefined
          ? { minUserScheduleIntervalS: input.minUserScheduleIntervalS }
          : {}),
        sla: input.sla ?? null,
        slaSetAt: deps.scheduleClock(),
      });
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
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) =>
        deps.catalog.listOfferings(q, tenantScope(principal(c))),
      );
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
    async (c) => {
      const p = principal(c);
      const row = await offering(c.req.valid('param').id);
      if (!isSpAdmin(p) && !(await deps.catalog.isGranted(row.id, p.tenantId)))
        throw new NotFoundError('offering', row.id);
      return c.json(offeringView(row), 200);
    },
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
    async (c) => {
      const row = await offering(c.req.valid('param').id);
      const patch = c.req.valid('json');
      if (patch.sla)
        assertValidSchedule(patch.sla.cron, patch.sla.timezone ?? 'UTC', deps.scheduleClock(), { prefix: 'sla.' });
      const changed = (await deps.catalog.updateOffering(row.id, patch, deps.scheduleClock()))!;
      // Queued, not awaited: each instance's configure-schedule or deconfigure-schedule task ends on its own.
      await deps.operations.slaChanged(row, changed);
      return c.json(offeringView(changed), 200);
    },
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
      await deps.catalog.deleteOffering((await offering(c.req.valid('param').id)).id);
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
    async (c) => {
      const row = await offering(c.req.valid('param').id);
      const { tenantId } = c.req.valid('json');
      if (!(await deps.tenants.get(tenantId))) {
        throw new InputError(`tenant ${tenantId} does not exist`, [{ path: 'tenantId', message: 'unknown tenant' }]);
      }
      await deps.catalog.grant(row.id, tenantId);
      return c.json({ offeringId: row.id, tenantId }, 201);
    },
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
      await deps.catalog.revoke((await offering(params.id)).id, params.tenantId);
      return c.body(null, 204);
    },
  );

  return app;
}
