import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { AppError, InputError } from '../domain/errors.js';
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
    const status = (err as { status?: number }).status;
    if (status === 413) return problem(c, 413, 'payload_too_large', 'request body is too large');
    log.error({ err, path: c.req.path }, 'unhandled error');
    return problem(c, 500, 'internal', 'internal error; see the control plane log');
  };
}

function issues(error: z.ZodError, prefix: string) {
  return error.issues.map((i) => ({
    path: [prefix, ...i.path].filter((p) => p !== '').join('.') || prefix,
    message: i.message,
  }));
}

/** Parses the JSON body against a schema; anything else is a 400 naming the bad fields. */
export async function body<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const type = c.req.header('content-type') ?? '';
  if (!type.includes('application/json')) {
    throw new InputError(
      'request body must be JSON (Content-Type: application/json)',
      undefined,
      'unsupported_media_type',
    );
  }
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch (err) {
    throw new InputError(`request body is not valid JSON: ${(err as Error).message}`, undefined, 'malformed_json');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const errors = issues(parsed.error, '');
    throw new InputError(
      `request body is not valid: ${errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; ')}`,
      errors,
    );
  }
  return parsed.data;
}

/** Parses the query string against a schema. */
export function query<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) {
    const errors = issues(parsed.error, 'query');
    throw new InputError(`query is not valid: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, errors);
  }
  return parsed.data;
}

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().min(1).optional(),
});
