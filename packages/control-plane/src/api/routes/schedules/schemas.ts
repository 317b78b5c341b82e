import { z } from '@hono/zod-openapi';
import { Cron, Time, Timezone } from '../../schemas.js';

export const ScheduleBody = z
  .object({
    cron: Cron,
    timezone: Timezone,
    keepLast: z.number().int().min(1).max(10_000),
  })
  .strict()
  .openapi('ScheduleBody');
export const Schedule = z
  .object({
    instanceId: z.string(),
    cron: z.string(),
    timezone: z.string(),
    keepLast: z.number().int(),
    nextRunAt: Time.nullable(),
  })
  .openapi('Schedule');
