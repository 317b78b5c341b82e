import { z } from '@hono/zod-openapi';
import { Cron, page, Time, Timezone } from '../../schemas.js';

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
export const Upcoming = z
  .object({
    kind: z.enum(['instance', 'offering', 'job']).openapi({
      description: "instance: the instance's own schedule; offering: the offering's SLA; job: a backup job's schedule",
    }),
    id: z.string().openapi({ description: 'the instance, the offering, or the job schedule' }),
    name: z.string().openapi({ description: "the instance's, offering's or job's name" }),
    nextRunAt: Time,
    cron: z.string(),
    timezone: z.string(),
    jobId: z.string().nullable().openapi({ description: 'kind job: the job the schedule runs' }),
  })
  .openapi('UpcomingRun');
export const UpcomingPage = page(Upcoming).openapi('UpcomingRunPage');
