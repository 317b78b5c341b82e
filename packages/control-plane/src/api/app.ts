import { OpenAPIHono, z, type RouteConfig } from '@hono/zod-openapi';
import { requestId } from 'hono/request-id';
import { routePath } from 'hono/route';
import { InputError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { bearerAuth, type Env } from './auth.js';
import { wholeBody } from './body.js';
import { isRunAgain, runAgainWhenBusy } from './busy-store.js';
import type { ApiDeps } from './context.js';
import { mutatingRequests, routesFirst } from './idempotency.js';
import { problemResponse, router } from './openapi.js';
import { tenantRequestRate } from './request-rate.js';
import { errorHandler, problem } from './problem.js';
import { agentRoutes, enrollRoutes } from './routes/agents/routes.js';
import { backupJobRoutes } from './routes/backup-jobs/routes.js';
import { backupRoutes } from './routes/backups/routes.js';
import { CONSOLE_BASE, consoleRoutes } from './routes/console/routes.js';
import { DOCS_ASSETS, docsRoutes } from './routes/docs/routes.js';
import { instanceRoutes } from './routes/instances/routes.js';
import { maintenanceRoutes } from './routes/maintenance/routes.js';
import { offeringRoutes } from './routes/offerings/routes.js';
import { providerRoutes } from './routes/providers/routes.js';
import { scheduleRoutes } from './routes/schedules/routes.js';
import { systemRoutes } from './routes/system/routes.js';
import { eventRoutes } from './routes/events/routes.js';
import { taskRoutes } from './routes/tasks/routes.js';
import { tenantRoutes } from './routes/tenants/routes.js';
import { usageRoutes } from './routes/usage/routes.js';

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/**
 * The HTTP API: thin routes, each calling one operation, validated and documented from one
 * set of schemas (`/openapi.json`, reference page at `/docs`); errors mapped once.
 */
export function createApp(deps: ApiDeps, log: Logger): OpenAPIHono<Env> {
  const app = new OpenAPIHono<Env>();
  app.use(requestId());
  app.use(async (c, next) => {
    // A request run again after a busy store is counted once, as the request its client made.
    if (isRunAgain(c.req.raw)) return next();
    const started = performance.now();
    await next();
    // The route pattern, not the path: ids must not explode the label space.
    const route = routePath(c, -1) || 'unmatched';
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.httpDuration.observe({ method: c.req.method, route }, (performance.now() - started) / 1000);
    log.debug(
      { method: c.req.method, path: c.req.path, status: c.res.status, requestId: c.get('requestId') },
      'request',
    );
  });
  // A request the store refused as busy is run again here before its client hears of it.
  app.use(
    '/v1/*',
    runAgainWhenBusy(app, () => deps.metrics.httpBusyRuns.inc()),
  );
  // The whole body, read before any handler (and so before any store transaction) runs: a
  // client trickling its body holds only its own connection.
  app.use('/v1/*', wholeBody(deps.config.maxBodyBytes));
  // A body in anything but JSON is refused up front, with a clear reason, before any validator.
  app.use('/v1/*', async (c, next) => {
    const hasBody = (c.req.header('content-length') ?? '0') !== '0' || c.req.header('transfer-encoding') !== undefined;
    if (hasBody && !JSON_TYPE.test(c.req.header('content-type') ?? '')) {
      throw new InputError(
        'request body must be JSON (Content-Type: application/json)',
        undefined,
        'unsupported_media_type',
      );
    }
    await next();
  });
  app.onError(errorHandler(log, deps.audiences));
  app.notFound((c) => problem(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`));

  app.route('/', systemRoutes(deps));
  app.get('/metrics', async (c) =>
    c.body(await deps.metrics.registry.metrics(), 200, { 'Content-Type': deps.metrics.registry.contentType }),
  );
  app.route('/v1', enrollRoutes(deps));

  const v1 = router();
  v1.use(bearerAuth(deps.tenants));
  // A tenant's flood is refused here, before it reaches a route or the store.
  v1.use(tenantRequestRate(deps.config.tenantRequestRate));
  // What a route declares to run before its request's transaction (it waits for an agent, it commits itself).
  v1.use(routesFirst);
  v1.use(mutatingRequests(deps.db, deps.idempotency));
  v1.route('/', tenantRoutes(deps));
  v1.route('/', agentRoutes(deps));
  v1.route('/', maintenanceRoutes(deps));
  v1.route('/', providerRoutes(deps));
  v1.route('/', offeringRoutes(deps));
  v1.route('/', instanceRoutes(deps));
  v1.route('/', scheduleRoutes(deps));
  v1.route('/', backupJobRoutes(deps));
  v1.route('/', backupRoutes(deps));
  v1.route('/', usageRoutes(deps));
  v1.route('/', taskRoutes(deps));
  v1.route('/', eventRoutes(deps));
  app.route('/v1', v1);

  // The routes outside /v1 that an operator's probes and scrapers call, without a token.
  const system = (
    path: string,
    summary: string,
    responses: RouteConfig['responses'],
    request?: RouteConfig['request'],
  ) =>
    app.openAPIRegistry.registerPath({
      method: 'get',
      path,
      tags: ['System'],
      summary,
      security: [],
      ...(request ? { request } : {}),
      responses,
    });
  const status = (description: string) => ({
    description,
    content: {
      'application/json': { schema: { type: 'object' as const, properties: { status: { type: 'string' as const } } } },
    },
  });
  system('/healthz', 'Liveness: the process answers (`{status: ok}`)', { 200: status('alive') });
  system('/livez', 'Liveness, as /healthz', { 200: status('alive') });
  system('/readyz', 'Readiness: the store answers and the control plane is not shutting down', {
    200: status('ready (`{status: ready}`)'),
    503: problemResponse(
      'shutting down (shutting_down), or the store is unreachable or not migrated (store_unavailable)',
    ),
  });
  system('/metrics', 'Prometheus metrics (text exposition format)', {
    200: { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
  });
  system('/docs', 'This reference page (HTML); it and its assets load from this control plane alone', {
    200: { description: 'the page', content: { 'text/html': { schema: { type: 'string' } } } },
  });
  system(
    `${DOCS_ASSETS}/{tag}/{file}`,
    "The reference page's scripts, styles and icons (cached for good: the tag changes with them)",
    { 200: { description: 'the asset' }, 404: problemResponse('no such asset (not_found)') },
    { params: z.object({ tag: z.string(), file: z.string() }) },
  );
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'an API token (POST /v1/tenants/{id}/tokens) or CAIRN_ADMIN_TOKEN',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Cairn control plane API',
      version: '1.0.0',
      description:
        'Multi-tenant backup control plane. Errors are application/problem+json (RFC 9457). Lists take ?limit=&cursor= and answer {items, nextCursor}. POST accepts Idempotency-Key.',
    },
    security: [{ bearer: [] }],
  });
  const page = { description: 'the page', content: { 'text/html': { schema: { type: 'string' as const } } } };
  const notBuilt = { description: 'the console is not built (plain text)' };
  system(CONSOLE_BASE, "The web console (HTML); it calls this API with its user's token", { 200: page, 503: notBuilt });
  system(
    `${CONSOLE_BASE}/{path}`,
    "The web console's assets (`assets/…`, cached for good) and client routes (any other path: the page)",
    { 200: page, 404: { description: 'no such asset (plain text)' }, 503: notBuilt },
    { params: z.object({ path: z.string() }) },
  );
  app.route('/', docsRoutes());
  app.route('/', consoleRoutes());
  return app;
}
