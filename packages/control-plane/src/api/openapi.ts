import { createRoute, OpenAPIHono, type RouteConfig, type RouteHandler, type z } from '@hono/zod-openapi';
import { InputError } from '../domain/errors.js';
import type { Env } from './auth.js';
import { Problem } from './schemas.js';

function describeIssues(error: z.ZodError, target: string) {
  const prefix = target === 'json' ? '' : target === 'param' ? 'path' : target;
  return error.issues.map((i) => ({
    path: [prefix, ...i.path.map(String)].filter((p) => p !== '').join('.') || '(body)',
    message: i.message,
  }));
}

/**
 * A router whose routes validate with their OpenAPI schemas; a failed validation becomes one
 * 400 problem naming every bad field (`errors: [{path, message}]`), and nothing is written.
 */
export function router(): OpenAPIHono<Env> {
  return new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (result.success) return;
      const errors = describeIssues(result.error, result.target);
      const what = result.target === 'json' ? 'request body' : result.target === 'query' ? 'query' : result.target;
      throw new InputError(`${what} is not valid: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, errors);
    },
  });
}

/** A JSON request body for `createRoute`. */
export function jsonBody<T extends z.ZodType>(schema: T, required = true) {
  return { body: { content: { 'application/json': { schema } }, required } };
}

/** A JSON response for `createRoute`. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { content: { 'application/json': { schema } }, description };
}

/** A problem+json response for `createRoute`. */
export const problemResponse = (description: string) => ({
  content: { 'application/problem+json': { schema: Problem } },
  description,
});

/** The error answers every authenticated route may give. */
export const errorResponses = {
  400: problemResponse('invalid input (the body, query or a header); nothing was written'),
  401: problemResponse('missing or invalid bearer token'),
  403: problemResponse('the caller’s role does not allow this'),
  404: problemResponse('unknown id, or one that belongs to another tenant'),
  409: problemResponse('the current state does not allow this'),
  413: problemResponse('the request body is larger than CAIRN_MAX_BODY_BYTES (payload_too_large); nothing was written'),
  429: problemResponse(
    "the caller's tenant made more requests than its rate allows (too_many_requests, quota requestRate, with Retry-After); nothing was done",
  ),
  503: problemResponse(
    'the store could not complete the request now (store_busy, with Retry-After); nothing was changed, retry it',
  ),
} as const;

/** `503` of a route that may also refuse for a maintenance window. */
export const maintenanceResponse = {
  503: problemResponse(
    'a maintenance window covers it (maintenance, with the window’s message), or the store is busy (store_busy, with Retry-After); nothing was started',
  ),
} as const;

/** `502`/`504` of a route that waits for a plugin's answer through an agent. */
export const upstreamResponses = {
  502: problemResponse('the plugin failed (provider_failed, naming its code and message)'),
  504: problemResponse('no agent answered in time (provider_timeout)'),
} as const;

type Method = RouteConfig['method'];
type Responses = RouteConfig['responses'];
type Request = NonNullable<RouteConfig['request']>;
type Middleware = RouteConfig['middleware'];

/** The route `api.get(path, spec)` (and the other methods) declares: what `createRoute` is given. */
type Declared<M extends Method, P extends string, Q extends Request, R extends Responses, W extends Middleware> = {
  method: M;
  path: P;
  request: Q;
  responses: {
    [S in keyof R | keyof typeof errorResponses]: S extends keyof R
      ? R[S]
      : (typeof errorResponses)[S & keyof typeof errorResponses];
  };
  middleware: W;
};

/** One route: its summary, request and own answers, any middleware, and its handler. */
interface RouteSpec<M extends Method, P extends string, Q extends Request, R extends Responses, W extends Middleware> {
  summary: string;
  /** Replaces the resource's tags (a route of a resource that shows under a tag of its own). */
  tags?: string[];
  /** `[]` for the one route that takes no bearer token. */
  security?: RouteConfig['security'];
  middleware?: W;
  request?: Q;
  responses: R;
  /** Reads `c.req.valid(…)` as `request` declares it; answers only what `responses` (and errors) declare. */
  handler: RouteHandler<Declared<M, P, Q, R, W>, Env>;
}

/** Declares one route of a resource (see `resource`). */
type Declare<M extends Method> = <
  P extends string,
  Q extends Request = Record<never, never>,
  R extends Responses = Responses,
  W extends Middleware = undefined,
>(
  path: P,
  spec: RouteSpec<M, P, Q, R, W>,
) => void;

/** A resource's router (`app`, mounted in api/app.ts) and the methods that declare its routes. */
export interface Resource {
  app: OpenAPIHono<Env>;
  get: Declare<'get'>;
  post: Declare<'post'>;
  put: Declare<'put'>;
  patch: Declare<'patch'>;
  delete: Declare<'delete'>;
}

/**
 * The routes of one resource, on a router of their own (`api.app`, mounted once in api/app.ts):
 * `api.get(path, spec)` (and `post`, `put`, `patch`, `delete`) is `app.openapi(createRoute(…),
 * spec.handler)` with the resource's `tags` and every answer of `errorResponses` filled in (an
 * answer the spec gives for the same status replaces it), so a route declares only what is its
 * own. The handler stays fully typed by its spec: `c.req.valid(…)` and the answers it may give.
 *
 * @example
 * const api = resource('Tenants');
 * api.get('/tenants/{id}', { summary, request: { params: IdParam }, responses: { 200: … }, handler: async (c) => … });
 */
export function resource(...tags: string[]): Resource {
  const app = router();
  const declare =
    <M extends Method>(method: M): Declare<M> =>
    (path, spec) => {
      const { handler, responses, ...rest } = spec;
      app.openapi(
        createRoute({ method, path, tags, ...rest, responses: { ...errorResponses, ...responses } }),
        handler as never,
      );
    };
  return {
    app,
    get: declare('get'),
    post: declare('post'),
    put: declare('put'),
    patch: declare('patch'),
    delete: declare('delete'),
  };
}
