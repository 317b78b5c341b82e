import { principal } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonBody, jsonResponse, maintenanceResponse, resource } from '../../openapi.js';
import { IdParam, pathId, SearchQuery } from '../../schemas.js';
import { pageView } from '../../views.js';
import { Task, TaskList } from '../tasks/schemas.js';
import { taskLocation, taskView } from '../tasks/views.js';
import {
  AssignOffering,
  BackupStart,
  Instance,
  InstanceAssignment,
  InstanceCreate,
  InstancePage,
  RemoveOfferingQuery,
} from './schemas.js';
import { instanceView } from './views.js';

/** An instance id as the path gives it: one that cannot be an id is an unknown instance (404). */
const instanceId = (id: string) => pathId('instance', id);

export function instanceRoutes(deps: ApiDeps) {
  const api = resource('Instances');

  api.post('/instances', {
    summary: 'Create a protected resource (VM, volume set, namespace) of a tenant',
    request: jsonBody(InstanceCreate),
    responses: { 201: jsonResponse(Instance, 'the instance') },
    handler: async (c) => {
      const row = await deps.instances.create(principal(c), c.req.valid('json'));
      return c.json(instanceView(row), 201, { Location: `/v1/instances/${row.id}` });
    },
  });

  api.get('/instances', {
    summary: 'List instances (a tenant: its own), or those matching ?q=',
    request: { query: SearchQuery },
    responses: { 200: jsonResponse(InstancePage, 'a page of instances') },
    handler: async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.instances.list(principal(c), q, q.q));
      return c.json(pageView(page, instanceView), 200);
    },
  });

  api.get('/instances/{id}', {
    summary: 'Get an instance',
    request: { params: IdParam },
    responses: { 200: jsonResponse(Instance, 'the instance') },
    handler: async (c) =>
      c.json(
        instanceView(await deps.operations.visibleInstance(principal(c), instanceId(c.req.valid('param').id))),
        200,
      ),
  });

  api.delete('/instances/{id}', {
    summary: 'Delete an instance with no active task and no backups',
    request: { params: IdParam },
    responses: {
      202: jsonResponse(TaskList, 'deleted; the provider ran its schedule: the deconfigure-schedule task'),
      204: { description: 'deleted' },
    },
    handler: async (c) => {
      const task = await deps.instances.delete(principal(c), instanceId(c.req.valid('param').id));
      if (!task) return c.body(null, 204);
      return c.json({ items: [taskView(task, await deps.audiences.of(principal(c)))] }, 202);
    },
  });

  api.put('/instances/{id}/offering', {
    summary: 'Assign a backup offering granted to the instance’s tenant, in its zone',
    request: { params: IdParam, ...jsonBody(AssignOffering) },
    responses: {
      200: jsonResponse(Instance, 'the instance after the change'),
      202: jsonResponse(
        InstanceAssignment,
        'assigned, waiting for the provider to set up the SLA schedule (configure-schedule task); rolled back if it fails',
      ),
    },
    handler: async (c) => {
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
        taskLocation(task),
      );
    },
  });

  api.delete('/instances/{id}/offering', {
    summary:
      'Remove the instance’s backup offering; with force=true also delete its restore points through the provider',
    request: { params: IdParam, query: RemoveOfferingQuery },
    responses: {
      202: jsonResponse(
        TaskList,
        'removed, with the deconfigure-schedule task where the provider ran the schedule and, with force=true, one delete-backup task per restore point',
      ),
      204: { description: 'removed; the restore points stay; no provider schedule to remove' },
    },
    handler: async (c) => {
      const force = c.req.valid('query').force === 'true';
      const tasks = await deps.operations.removeOffering(principal(c), instanceId(c.req.valid('param').id), force);
      if (!force && tasks.length === 0) return c.body(null, 204);
      const to = await deps.audiences.of(principal(c));
      return c.json({ items: tasks.map((t) => taskView(t, to)) }, 202);
    },
  });

  api.post('/instances/{id}/backups', {
    summary: 'Start an ad-hoc backup (only where the offering allows it); the body is optional',
    request: { params: IdParam, ...jsonBody(BackupStart, false) },
    responses: { 202: jsonResponse(Task, 'the backup task'), ...maintenanceResponse },
    handler: async (c) => {
      // Without a JSON body the validator leaves nothing to read: a FULL backup.
      const mode = (c.req.valid('json') as { mode?: 'FULL' | 'INCREMENT' } | undefined)?.mode ?? 'FULL';
      const task = await deps.operations.backup(principal(c), instanceId(c.req.valid('param').id), mode);
      return c.json(taskView(task, await deps.audiences.of(principal(c))), 202, taskLocation(task));
    },
  });

  return api.app;
}
