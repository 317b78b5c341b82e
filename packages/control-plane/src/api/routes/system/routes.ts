import { Hono } from 'hono';
import { storeReady } from '../../../store/db.js';
import type { ApiDeps } from '../../context.js';
import { problem } from '../../problem.js';

export function systemRoutes(deps: ApiDeps) {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/livez', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    if (!deps.isAccepting()) return problem(c, 503, 'shutting_down', 'the control plane is shutting down');
    if (!(await storeReady(deps.db)))
      return problem(c, 503, 'store_unavailable', 'the store is unreachable or not migrated');
    return c.json({ status: 'ready' });
  });
  return app;
}
