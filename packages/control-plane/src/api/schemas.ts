import { z } from '@hono/zod-openapi';
import { NotFoundError } from '../domain/errors.js';
import { isWellFormed, JSON_MAX_BYTES, JSON_MAX_DEPTH, jsonProblem } from '../domain/json-limits.js';
import { ID_PATTERN, NAME_MAX_CHARS, nameProblem, normaliseName, textProblem } from '../domain/names.js';
import { isKnownTimezone } from '../domain/schedule.js';

/*
 * The schema pieces every resource shares: ids, names, text, free JSON, times, path and paging
 * parameters, the problem body. Each resource's own bodies are in `routes/<resource>/schemas.ts`,
 * beside the routes that validate with them; /openapi.json documents the same schemas.
 */

/** Our own id format, so garbage in a body is a 400 without touching the store. */
export const Id = z.string().regex(ID_PATTERN, 'not a valid id').openapi({ example: 'tsk_01m8751zesr5rhnfh0ab67my7c' });
export const Zone = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'zone names are lowercase letters, digits and dashes (up to 63)')
  .openapi({ example: 'zone-a' });
/** A name: trimmed and NFC-normalised, then compared byte for byte on every backend. */
export const Name = z
  .string()
  .overwrite(normaliseName)
  .superRefine((s, ctx) => {
    const problem = nameProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .openapi({
    minLength: 1,
    maxLength: NAME_MAX_CHARS,
    description: `NFC; 1-${NAME_MAX_CHARS} characters; no control characters; not only invisible ones`,
  });
/** Free text of at most `max` characters (code points, as MySQL counts them), never cut. */
export const Text = (max: number, { required = false, trim = false } = {}) =>
  z
    .string()
    .overwrite((s) => (trim ? s.trim() : s))
    .superRefine((s, ctx) => {
      const problem = required && s.length === 0 ? 'must not be empty' : textProblem(s, max);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .openapi({ maxLength: max, ...(required ? { minLength: 1 } : {}) });
/**
 * The one schema for client-supplied free-form JSON (locators, provider config and credentials):
 * bounded depth and size, no prototype keys. It checks the value as parsed, before any copy that
 * would silently drop a `__proto__` key.
 */
export function freeJson<T>(what: 'object' | 'value', description: string) {
  // z.custom keeps the value as parsed (z.record would copy it and lose `__proto__`).
  return z
    .custom<T>(() => true)
    .superRefine((v, ctx) => {
      if (v === undefined) return void ctx.addIssue({ code: 'custom', message: 'is required' });
      if (v === null) return void ctx.addIssue({ code: 'custom', message: 'must not be null' });
      if (what === 'object' && (typeof v !== 'object' || Array.isArray(v))) {
        return void ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
      }
      const problem = jsonProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path });
    })
    .openapi({
      type: what === 'object' ? 'object' : ['object', 'array', 'string', 'number', 'boolean'],
      description: `${description} (at most ${JSON_MAX_BYTES} bytes as UTF-8 JSON, nested at most ${JSON_MAX_DEPTH} deep; no __proto__, constructor or prototype keys)`,
    });
}
export const FreeObject = (description: string) => freeJson<Record<string, unknown>>('object', description);
export const Time = z.string().openapi({ format: 'date-time', example: '2026-11-24T16:08:38.617Z' });
export const Cron = z
  .string()
  .trim()
  .max(200)
  .refine(isWellFormed, 'holds an unpaired UTF-16 surrogate (not valid Unicode)')
  .regex(/^(\S+\s+){4,5}\S+$/, 'must be a cron expression with 5 or 6 fields')
  .openapi({ example: '0 2 * * *' });
/** An IANA time zone name this control plane knows (e.g. Europe/Berlin, UTC). */
export const Timezone = z
  .string()
  .max(100)
  .refine(isKnownTimezone, 'unknown IANA time zone')
  .openapi({ example: 'Europe/Berlin' });
/** The tenant a body is for: only an sp-admin names one, acting for that tenant. */
export const ForTenant = Id.optional().openapi({ description: 'only for an sp-admin acting for a tenant' });

/** Path parameters are plain strings here: a malformed id is answered 404 like an unknown one. */
export const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });
export const ZoneParam = z.object({ zone: z.string().openapi({ param: { name: 'zone', in: 'path' } }) });
/**
 * A whole number in a query string, `min` to `max`, spelt in plain decimal digits only: no sign,
 * spaces, leading zeros, fraction, exponent or hex. What `Number()` would also take (`0x10`,
 * ` 7`, `1e1`) is refused, so a number has one spelling and a typo is never read as another value.
 */
export function decimal(min: number, max: number) {
  return z
    .string()
    .regex(/^(0|[1-9][0-9]*)$/, 'must be a whole number in plain decimal digits (no sign, spaces or leading zeros)')
    .transform(Number)
    .pipe(z.number().min(min).max(max))
    .openapi({ type: 'integer', minimum: min, maximum: max });
}
export const PageQuery = z
  .object({
    limit: decimal(1, 500)
      .default(50)
      .openapi({ description: 'items per page, 1-500 in plain decimal digits (default 50)' }),
    cursor: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .openapi({ description: 'the nextCursor of the previous page of this same list; nothing else' }),
  })
  .strict();
/** A list that can be searched: `?q=`, see the repositories' `nameOrId`. */
export const SearchQuery = PageQuery.extend({
  q: z.string().min(1).max(100).optional().openapi({
    description: 'only the items whose name contains this text (ignoring case), or whose id it is; 1-100 characters',
  }),
}).strict();
export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    taskId: z
      .string()
      .optional()
      .openapi({ description: '`maintenance`: the failed task recorded for the refused backup' }),
    runId: z.string().optional().openapi({ description: '`maintenance`: the job run whose instances went to ERROR' }),
  })
  .openapi('Problem');
/** A page of a list: `{items, nextCursor}`. */
export const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });
/** A route that takes no query parameters refuses any, rather than ignoring a misspelt one. */
export const NoQuery = z.object({}).strict();

/**
 * An id as a path gives it (path parameters are plain strings): one that cannot be an id is an
 * unknown `what` (404), answered without touching the store.
 */
export function pathId(what: string, raw: string): string {
  if (!Id.safeParse(raw).success) throw new NotFoundError(what, raw);
  return raw;
}
