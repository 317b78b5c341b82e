import type { Context, MiddlewareHandler } from 'hono';
import { principal, type Env } from '../../auth.js';
import { bufferedBody } from '../../body.js';
import type { ApiDeps } from '../../context.js';
import { beforeTransaction } from '../../idempotency.js';
import { jsonBody, jsonResponse, problemResponse, resource, upstreamResponses } from '../../openapi.js';
import { Id, IdParam, NoQuery, pathId } from '../../schemas.js';
import { pageView } from '../../views.js';
import { Task } from '../tasks/schemas.js';
import { taskLocation, taskView } from '../tasks/views.js';
import { Backup, BackupPage, BackupQuery, RestoreStart, RestoreVolume } from './schemas.js';
import { backupView } from './views.js';

/** The request's body as read ahead of the routes: undefined when there is none, null when it is no JSON. */
function peekJson(c: Context<Env>): unknown {
  const text = bufferedBody(c)?.toString('utf8') ?? '';
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/**
 * `POST /v1/backups/{id}/restore` through a plugin that declares restore-requires-stopped: the
 * instance's power state is asked before the request's transaction opens (waiting for an agent
 * inside it would hold the store, on SQLite the only connection, while the answer needs it).
 * A running instance is refused here; the restore task then carries `requireStopped`, so the
 * plugin refuses too if the instance was started between this check and the restore.
 */
function inPlaceRestoreCheck(deps: ApiDeps): MiddlewareHandler<Env> {
  return async (c, next) => {
    const id = c.req.param('id');
    // Anything but a POST with a well-formed id is the route's to answer.
    if (c.req.method !== 'POST' || id === undefined || !Id.safeParse(id).success) return next();
    // A restore to another path is not in place: nothing to check. A bad body is the route's to
    // refuse (400), with nothing asked.
    const body = peekJson(c);
    if (body !== undefined) {
      const parsed = RestoreStart.safeParse(body);
      if (!parsed.success || parsed.data.targetPath !== undefined || parsed.data.targetNamespace !== undefined)
        return next();
    }
    const p = principal(c);
    const key = c.req.header('idempotency-key');
    // A retry of a restore already accepted gets its stored answer, not a second check.
    if (key === undefined || !(await deps.records.answered(p, key))) {
      await deps.operations.assertStoppedForRestore(p, id, deps.config.powerStateWaitMs);
    }
    await next();
  };
}

export function backupRoutes(deps: ApiDeps) {
  const api = resource('Backups');
  const visible = (c: Context<Env>, id: string) => deps.operations.visibleBackup(principal(c), pathId('backup', id));

  api.get('/backups', {
    summary: 'List restore points, newest first (a tenant: its own)',
    request: { query: BackupQuery },
    responses: { 200: jsonResponse(BackupPage, 'a page of backups') },
    handler: async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) =>
        deps.records.listBackups(principal(c), q, q),
      );
      return c.json(pageView(page, backupView), 200);
    },
  });

  api.get('/backups/{id}', {
    summary: 'Get a restore point',
    request: { params: IdParam },
    responses: { 200: jsonResponse(Backup, 'the backup') },
    handler: async (c) => c.json(backupView(await visible(c, c.req.valid('param').id)), 200),
  });

  api.delete('/backups/{id}', {
    summary:
      'Delete a restore point through its provider; the record goes when the provider confirms (a pending delete is answered again)',
    request: { params: IdParam, query: NoQuery },
    responses: { 202: jsonResponse(Task, 'the delete-backup task') },
    handler: async (c) => {
      const backup = await visible(c, c.req.valid('param').id);
      const { task } = await deps.operations.deleteBackup(principal(c), backup.id);
      return c.json(taskView(task, await deps.audiences.of(principal(c))), 202, taskLocation(task));
    },
  });

  api.post('/backups/{id}/restore', {
    // Before the request transaction: it may wait for an agent's answer.
    middleware: [beforeTransaction(inPlaceRestoreCheck(deps))] as const,
    summary:
      'Restore a backup in place (where the plugin requires a stopped instance, a running one is refused with 409 instance_running), to `targetPath` on the agent host, or into `targetNamespace` of the cluster; the body is optional',
    request: { params: IdParam, ...jsonBody(RestoreStart, false) },
    responses: {
      202: jsonResponse(Task, 'the restore task'),
      ...upstreamResponses,
      429: problemResponse(
        "the tenant's share of requests waiting for an instance's power state is taken (too_many_waiters), or its request rate (too_many_requests); nothing was queued",
      ),
    },
    handler: async (c) => {
      const backup = await visible(c, c.req.valid('param').id);
      // Without a JSON body the validator leaves nothing to read: in place.
      const body = c.req.valid('json') as { targetPath?: string; targetNamespace?: string } | undefined;
      const task = await deps.operations.restore(principal(c), backup.id, body ?? {});
      return c.json(taskView(task, await deps.audiences.of(principal(c))), 202, taskLocation(task));
    },
  });

  api.post('/backups/{id}/restore-volume', {
    summary: 'Restore one volume of a backup and attach it to another instance of the same tenant',
    request: { params: IdParam, ...jsonBody(RestoreVolume) },
    responses: { 202: jsonResponse(Task, 'the restore-volume task') },
    handler: async (c) => {
      const backup = await visible(c, c.req.valid('param').id);
      const { volume, targetInstanceId } = c.req.valid('json');
      const task = await deps.operations.restoreVolume(principal(c), backup.id, volume, targetInstanceId);
      return c.json(taskView(task, await deps.audiences.of(principal(c))), 202, taskLocation(task));
    },
  });

  return api.app;
}
