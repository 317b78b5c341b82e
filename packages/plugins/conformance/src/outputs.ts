import { z } from 'zod';
import { summarize } from './rules.js';

/** An ISO 8601 time, as `sync` must give `createdAt` and `expiresAt`. */
const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time');

/**
 * The shapes the control plane takes from the read-only operations the kit calls, by operation
 * (the SDK's `ListedBackup`, `ProviderOffering`, preflight and power-state answers).
 */
export const OUTPUTS = {
  sync: z.array(
    z.object({
      externalId: z.string().min(1).max(255),
      createdAt: isoTime,
      sizeBytes: z.number().int().nonnegative(),
      locator: z.unknown().optional(),
      mode: z.enum(['FULL', 'INCREMENT']).optional(),
      parentExternalId: z.string().nullable().optional(),
      expiresAt: isoTime.nullable().optional(),
    }),
  ),
  'list-offerings': z.array(
    z.object({ externalId: z.string().min(1).max(255), name: z.string().min(1), description: z.string().optional() }),
  ),
  preflight: z.object({ ok: z.boolean(), message: z.string().optional() }),
  'power-state': z.object({ state: z.enum(['running', 'stopped', 'unknown']) }),
} as const;

export type ReadOnlyOperation = keyof typeof OUTPUTS;

/** Each problem of a zod failure as `path: message`, the path dotted (`0.sizeBytes`), unknown fields by name. */
export function issues(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const where = i.path.length === 0 ? '' : `${i.path.join('.')}: `;
    if (i.code === 'unrecognized_keys')
      return `${where}unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}`;
    return `${where || '(top): '}${i.message}`;
  });
}

/** What is wrong with an operation's output, if anything. */
export function outputProblem(operation: ReadOnlyOperation, value: unknown): string | undefined {
  const parsed = OUTPUTS[operation].safeParse(value);
  return parsed.success
    ? undefined
    : `its output is not what the control plane takes: ${summarize(issues(parsed.error))}`;
}
