import { OpenAPIHono, type z } from '@hono/zod-openapi';
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
