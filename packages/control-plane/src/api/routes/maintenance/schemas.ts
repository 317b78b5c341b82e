import { z } from '@hono/zod-openapi';
import {
  DEFAULT_MAINTENANCE_MESSAGE,
  MAX_MAINTENANCE_MESSAGE_CHARS,
  maintenanceMessage,
} from '../../../domain/maintenance.js';
import { decimal, Time } from '../../schemas.js';

export const MaintenancePut = z
  .object({
    enabled: z.boolean(),
    message: z
      .string()
      .superRefine((m, ctx) => {
        const checked = maintenanceMessage(m);
        if (!checked.ok) ctx.addIssue({ code: 'custom', message: checked.problem });
      })
      .optional()
      .openapi({
        maxLength: MAX_MAINTENANCE_MESSAGE_CHARS,
        description: `what tenants are told (trimmed; 1-${MAX_MAINTENANCE_MESSAGE_CHARS} characters); default: "${DEFAULT_MAINTENANCE_MESSAGE}"`,
      }),
  })
  .strict()
  .openapi('MaintenancePut');
export const MaintenanceQuery = z
  .object({
    wait: z
      .enum(['ready'])
      .optional()
      .openapi({ description: 'wait until the scope is ready (or the timeout passes)' }),
    timeoutS: decimal(1, 300)
      .optional()
      .openapi({ description: 'how long `wait=ready` waits, 1-300 seconds (default 30)' }),
  })
  .strict()
  .refine((q) => q.timeoutS === undefined || q.wait !== undefined, {
    message: 'timeoutS needs wait=ready',
    path: ['timeoutS'],
  });
export const Maintenance = z
  .object({
    scope: z.enum(['global', 'zone', 'agent']),
    zone: z.string().optional(),
    agentId: z.string().optional(),
    enabled: z.boolean(),
    message: z.string(),
    runningBackups: z
      .number()
      .int()
      .openapi({ description: 'backup tasks held by agents (dispatched or running) in the scope' }),
    runningOther: z.number().int().openapi({
      description:
        'deletes, prunes and provider-schedule changes held by agents in the scope (they reach the backup system, so maintenance holds them back too)',
    }),
    ready: z.boolean().openapi({ description: 'in maintenance and none of the work it holds back running there' }),
    setBy: z.object({ tokenId: z.string(), role: z.string() }).nullable(),
    setAt: Time.nullable(),
    source: z.enum(['api', 'agent']).openapi({
      description: '`agent`: an agent scope in maintenance because `cairn-agent drain` was run on its host',
    }),
  })
  .openapi('Maintenance');
