import { createRoute } from '@hono/zod-openapi';
import { NotFoundError } from '../../domain/errors.js';
import { principal } from '../auth.js';
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

/** An instance id as the path gives it: one that cannot be an id is an unknown instance (404). */
function instanceId(id: string): string {
  if (!Id.safeParse(id).success) throw new NotFoundError('instance', id);
  return id;
}

export function instanceRoutes(deps: ApiDeps) {
  const app = router();

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
      const row = await deps.instances.create(principal(c), c.req.valid('json'));
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
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.instances.list(principal(c), q));
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
    async (c) =>
      c.json(
        instanceView(await deps.operations.visibleInstance(principal(c), instanceId(c.req.valid('param').id))),
        200,
      ),
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
      const task = await deps.instances.delete(principal(c), instanceId(c.req.valid('param').id));
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
      const { offeringId } = c.req.valid('json');
      const { instance: assigned, task } = await deps.instances.assignOffering(
        principal(c),
        instanceId(c.req.valid('param').id),
        offeringId,
      );
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
      const force = c.req.valid('query').force === 'true';
      const tasks = await deps.operations.removeOffering(principal(c), instanceId(c.req.valid('param').id), force);
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
      // Without a JSON body the validator leaves nothing to read: a FULL backup.
      const mode = (c.req.valid('json') as { mode?: 'FULL' | 'INCREMENT' } | undefined)?.mode ?? 'FULL';
      const task = await deps.operations.backup(principal(c), instanceId(c.req.valid('param').id), mode);
      return c.json(taskView(task, await deps.audiences.of(principal(c))), 202, { Location: `/v1/tasks/${task.id}` });
    },
  );

  return app;
}
