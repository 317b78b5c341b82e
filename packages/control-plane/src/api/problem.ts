import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { HTTPException } from 'hono/http-exception';
import { AppError } from '../domain/errors.js';
import type { Logger } from '../logger.js';

/** RFC 9457 problem details, the one error shape of the API. */
export function problem(
  c: Context,
  status: number,
  code: string,
  detail: string,
  errors?: { path: string; message: string }[],
) {
  return c.json(
    {
      type: `https://cairn.dev/problems/${code}`,
      title: code.replace(/_/g, ' '),
      status,
      detail,
      code,
      ...(errors ? { errors } : {}),
    },
    status as ContentfulStatusCode,
    { 'Content-Type': 'application/problem+json' },
  );
}

/** Maps every thrown error to problem+json, once. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof AppError) return problem(c, err.status, err.code, err.message, err.errors);
    // Hono's JSON validator throws this for a body that does not parse.
    if (err instanceof HTTPException && err.status === 400) {
      return problem(c, 400, 'malformed_json', `request body is not valid JSON: ${err.message}`);
    }
    const status = (err as { status?: number }).status;
    if (status === 413) return problem(c, 413, 'payload_too_large', 'request body is too large');
    log.error({ err, path: c.req.path }, 'unhandled error');
    return problem(c, 500, 'internal', 'internal error; see the control plane log');
  };
}
