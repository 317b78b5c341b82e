import { Hono } from 'hono';

import { NotFoundError } from '../../domain/errors.js';
import { principal, tenantScope, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { idSchema } from '../ids.js';
import { pageQuery, query } from '../problem.js';
import { backupView, taskView } from '../views.js';

export function backupRoutes(deps: ApiDeps) {
  const app = new Hono<Env>();
  const visible = (c: Parameters<typeof principal>[0], id: string) => {
    if (!idSchema.safeParse(id).success) throw new NotFoundError('backup', id);
    return deps.operations.visibleBackup(principal(c), id);
  };

  app.get('/backups', async (c) => {
    const q = query(c, pageQuery.extend({ instanceId: idSchema.optional() }).strict());
    const tenantId = tenantScope(principal(c));
    const page = await deps.tasks.listBackups(q, {
      ...(tenantId !== undefined ? { tenantId } : {}),
      ...(q.instanceId ? { instanceId: q.instanceId } : {}),
    });
    return c.json({ items: page.items.map(backupView), nextCursor: page.nextCursor });
  });

  app.get('/backups/:id', async (c) => c.json(backupView(await visible(c, c.req.param('id')))));

  app.post('/backups/:id/restore', async (c) => {
    const backup = await visible(c, c.req.param('id'));
    const task = await deps.operations.restore(principal(c), backup.id);
    return c.json(taskView(task), 202, { Location: `/v1/tasks/${task.id}` });
  });

  return app;
}
