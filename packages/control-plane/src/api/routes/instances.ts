import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { isSpAdmin } from '../../domain/access.js';
import { ConflictError, InputError, NotFoundError, ZoneNotOfferedError } from '../../domain/errors.js';
import { principal, tenantScope, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, maintenanceResponse, router } from '../openapi.js';
import {
  AssignOffering,
  BackupStart,
  Id,
  IdParam,
  Instance,
  InstanceAssignment,
  InstanceCreate,
  InstancePage,
  PageQuery,
  RemoveOfferingQuery,
  Task,
  TaskList,
} from '../schemas.js';
import { instanceView, taskView } from '../views.js';

const tags = ['Instances'];

export function instanceRoutes(deps: ApiDeps) {
  const app = router();
  const visible = (c: Context<Env>, id: string) => {
    if (!Id.safeParse(id).success) throw new NotFoundError('instance', id);
    return deps.operations.visibleInstance(principal(c), id);
  };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/instances',
      tags,
      summary: 'Create a protected resource (VM, volume set, namespace) of a tenant',
      request: jsonBody(InstanceCreate),
      responses: { 201: jsonResponse(Instance, 'the instance'), ...errorResponses },
    }),
    async (c) => {
      const p = principal(c);
      const input = c.req.valid('json');
      if (input.tenantId !== undefined && !isSpAdmin(p) && input.tenantId !== p.tenantId) {
        throw new InputError('tenantId may only be given by an sp-admin acting for a tenant', [
          { path: 'tenantId', message: 'not allowed' },
        ]);
      }
      const tenantId = input.tenantId ?? p.tenantId;
      if (!(await deps.tenants.get(tenantId))) {
        throw new InputError(`tenant ${tenantId} does not exist`, [{ path: 'tenantId', message: 'unknown tenant' }]);
      }
      // A tenant works only in the zones it is offered: another zone, its agents and its
      // maintenance stay hidden from it.
      if (!isSpAdmin(p) && !(await deps.catalog.zoneOffered(tenantId, input.zone)))
        throw new ZoneNotOfferedError(input.zone);
      if (input.agentId) {
        const agent = await deps.agents.get(input.agentId);
        if (!agent)
          throw new InputError(`agent ${input.agentId} does not exist`, [
            { path: 'agentId', message: 'unknown agent' },
          ]);
        if (agent.zone !== input.zone) {
          // Where another zone's agent is is the SP's to know, not a tenant's.
          const where = isSpAdmin(p) ? `is in zone ${agent.zone}, not ${input.zone}` : `is not in zone ${input.zone}`;
          throw new InputError(`agent ${agent.id} ${where}`, [{ path: 'agentId', message: 'agent in another zone' }]);
        }
      }
      // A locator is a claim on the SP's infrastructure: a tenant's is judged, an sp-admin's stands.
      const locatorClaim = isSpAdmin(p) ? 'sp' : 'tenant';
      if (locatorClaim === 'tenant') await deps.claims.checkNew(input.zone, tenantId, input.locator);
      await deps.quotas.reserve(tenantId, 'instances', 1);
      const row = await deps.catalog.createInstance({
        tenantId,
        name: input.name,
        zone: input.zone,
        locator: input.locator,
        agentId: input.agentId ?? null,
        locatorClaim,
      });
      return c.json(instanceView(row), 201, { Location: `/v1/instances/${row.id}` });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/instances',
      tags,
      summary: 'List instances (a tenant: its own)',
      request: { query: PageQuery },
      responses: { 200: jsonResponse(InstancePage, 'a page of instances'), ...errorResponses },
    }),
    async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) =>
        deps.catalog.listInstances(q, tenantScope(principal(c))),
      );
      return c.json({ items: page.items.map(instanceView), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/instances/{id}',
      tags,
      summary: 'Get an instance',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Instance, 'the instance'), ...errorResponses },
    }),
    async (c) => c.json(instanceView(await visible(c, c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/instances/{id}',
      tags,
      summary: 'Delete an instance with no active task and no backups',
      request: { params: IdParam },
      responses: {
        202: jsonResponse(TaskList, 'deleted; the provider ran its schedule: the deconfigure-schedule task'),
        204: { description: 'deleted' },
        ...errorResponses,
      },
    }),
    async (c) => {
      const instance = await visible(c, c.req.valid('param').id);
      const task = await deps.operations.deleteInstance(instance);
      await deps.schedules.forget(instance.id);
      if (!task) return c.body(null, 204);
      return c.json({ items: [taskView(task, await deps.audiences.of(principal(c)))] }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/instances/{id}/offering',
      tags,
      summary: 'Assign a backup offering granted to the instance’s tenant, in its zone',
      request: { params: IdParam, ...jsonBody(AssignOffering) },
      responses: {
        200: jsonResponse(Instance, 'the instance after the change'),
        202: jsonResponse(
          InstanceAssignment,
          'assigned, waiting for the provider to set up the SLA schedule (configure-schedule task); rolled back if it fails',
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      const instance = await visible(c, c.req.valid('param').id);
      const { offeringId } = c.req.valid('json');
      const offering = await deps.catalog.getOffering(offeringId);
      if (!offering || !(await deps.catalog.isGranted(offering.id, instance.tenantId))) {
        throw new InputError(`offering ${offeringId} does not exist or is not granted to the instance's tenant`, [
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
      const pending = instance.offeringId === offering.id && instance.scheduleState === 'configuring';
      if (instance.offeringId === offering.id && !pending) return c.json(instanceView(instance), 200);
      // Assigned already and still waiting for the provider: the same answer again, no second task.
      const { instance: assigned, task } = pending
        ? { instance, task: await deps.tasks.get(instance.scheduleTaskId ?? '') }
        : await deps.operations.assignOffering(instance, offering, deps.scheduleClock());
      if (!task) return c.json(instanceView(assigned), 200);
      return c.json(
        { instance: instanceView(assigned), task: taskView(task, await deps.audiences.of(principal(c))) },
        202,
        {
          Location: `/v1/tasks/${task.id}`,
        },
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/instances/{id}/offering',
      tags,
      summary:
        'Remove the instance’s backup offering; with force=true also delete its restore points through the provider',
      request: { params: IdParam, query: RemoveOfferingQuery },
      responses: {
        202: jsonResponse(
          TaskList,
          'removed, with the deconfigure-schedule task where the provider ran the schedule and, with force=true, one delete-backup task per restore point',
        ),
        204: { description: 'removed; the restore points stay; no provider schedule to remove' },
        ...errorResponses,
      },
    }),
    async (c) => {
      const instance = await visible(c, c.req.valid('param').id);
      const force = c.req.valid('query').force === 'true';
      const tasks = await deps.operations.removeOffering(principal(c), instance.id, force);
      if (!force && tasks.length === 0) return c.body(null, 204);
      const to = await deps.audiences.of(principal(c));
      return c.json({ items: tasks.map((t) => taskView(t, to)) }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/instances/{id}/backups',
      tags,
      summary: 'Start an ad-hoc backup (only where the offering allows it); the body is optional',
      request: { params: IdParam, ...jsonBody(BackupStart, false) },
      responses: { 202: jsonResponse(Task, 'the backup task'), ...errorResponses, ...maintenanceResponse },
    }),
    async (c) => {
      const instance = await visible(c, c.req.valid('param').id);
      // Without a JSON body the validator leaves nothing to read: a FULL backup.
      const mode = (c.req.valid('json') as { mode?: 'FULL' | 'INCREMENT' } | undefined)?.mode ?? 'FULL';
      const task = await deps.operations.backup(principal(c), instance.id, mode);
      return c.json(taskView(task, await deps.audiences.of(principal(c))), 202, { Location: `/v1/tasks/${task.id}` });
    },
  );

  return app;
}
