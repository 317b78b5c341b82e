import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { HTTPException } from 'hono/http-exception';
import { AppError, bearerChallenge, TooManyError, UnauthorizedError, UpstreamError } from '../domain/errors.js';
import { isTransient, isUniqueViolation } from '../store/db.js';
import type { Logger } from '../logger.js';
import type { Principal } from '../domain/access.js';
import type { Audiences } from './audience.js';

/** RFC 9457 problem details, the one error shape of the API. */
export function problem(
  c: Context,
  status: number,
  code: string,
  detail: string,
  errors?: { path: string; message: string }[],
  extensions: Record<string, string | number> = {},
) {
  return c.json(
    {
      type: `https://cairn.dev/problems/${code}`,
      title: code.replace(/_/g, ' '),
      status,
      detail,
      code,
      ...(errors ? { errors } : {}),
      ...extensions,
    },
    status as ContentfulStatusCode,
    { 'Content-Type': 'application/problem+json' },
  );
}

/** Maps every thrown error to problem+json, once. */
export function errorHandler(log: Logger, audiences: Audiences) {
  return async (err: Error, c: Context) => {
    if (err instanceof TooManyError) c.header('Retry-After', String(err.retryAfterS));
    if (err instanceof UnauthorizedError) c.header('WWW-Authenticate', bearerChallenge(err.tokenGiven));
    // What a plugin said, through an agent: a tenant reads it without the SP's endpoints.
    if (err instanceof UpstreamError) {
      const to = await audiences.of(c.get('principal') as Principal | undefined);
      return problem(c, err.status, err.code, to.text(err.message), err.errors, err.extensions);
    }
    if (err instanceof AppError) return problem(c, err.status, err.code, err.message, err.errors, err.extensions);
    // Hono's JSON validator throws this for a body that does not parse.
    if (err instanceof HTTPException && err.status === 400) {
      return problem(c, 400, 'malformed_json', `request body is not valid JSON: ${err.message}`);
    }
    const status = (err as { status?: number }).status;
    if (status === 413) return problem(c, 413, 'payload_too_large', 'request body is too large');
    // A deadlock victim or a busy store: the request's transaction was rolled back whole, so a
    // retry is safe.
    if (isTransient(err)) {
      c.header('Retry-After', '1');
      return problem(
        c,
        503,
        'store_busy',
        'the store could not complete this request now; nothing was changed, retry it',
      );
    }
    // Two requests raced to create the same thing; the loser's whole request was rolled back.
    if (isUniqueViolation(err)) {
      return problem(
        c,
        409,
        'conflict',
        'something with the same identity was created at the same time; nothing was changed',
      );
    }
    log.error({ err, path: c.req.path }, 'unhandled error');
    return problem(c, 500, 'internal', 'internal error; see the control plane log');
  };
}
