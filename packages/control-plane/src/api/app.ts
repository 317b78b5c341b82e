import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import type { Logger } from '../logger.js';
import { bearerAuth, type Env } from './auth.js';
import type { ApiDeps } from './context.js';
import { idempotency } from './idempotency.js';
import { errorHandler, problem } from './problem.js';
import { agentRoutes, enrollRoutes } from './routes/agents.js';
import { backupRoutes } from './routes/backups.js';
import { instanceRoutes } from './routes/instances.js';
import { offeringRoutes } from './routes/offerings.js';
import { providerRoutes } from './routes/providers.js';
import { systemRoutes } from './routes/system.js';
import { taskRoutes } from './routes/tasks.js';
import { tenantRoutes } from './routes/tenants.js';

/** The HTTP API: thin routes over repositories and operations; errors mapped once. */
export function createApp(deps: ApiDeps, log: Logger): Hono {
  const app = new Hono();
  app.use(requestId());
  app.use(async (c, next) => {
    await next();
    log.debug(
      { method: c.req.method, path: c.req.path, status: c.res.status, requestId: c.get('requestId') },
      'request',
    );
  });
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: deps.config.maxBodyBytes,
      onError: (c) => problem(c, 413, 'payload_too_large', `request body exceeds ${deps.config.maxBodyBytes} bytes`),
    }),
  );
  app.onError(errorHandler(log));
  app.notFound((c) => problem(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`));

  app.route('/', systemRoutes(deps));
  app.route('/v1', enrollRoutes(deps));

  const v1 = new Hono<Env>();
  v1.use(bearerAuth(deps.tenants));
  v1.use(idempotency(deps.idempotency));
  v1.route('/', tenantRoutes(deps));
  v1.route('/', agentRoutes(deps));
  v1.route('/', providerRoutes(deps));
  v1.route('/', offeringRoutes(deps));
  v1.route('/', instanceRoutes(deps));
  v1.route('/', backupRoutes(deps));
  v1.route('/', taskRoutes(deps));
  app.route('/v1', v1);
  return app;
}
