import { z } from '@hono/zod-openapi';
import { USER_SCHEDULE_FLOOR_S } from '../../../domain/schedule.js';
import { Cron, Id, Name, page, Text, Time, Timezone, Zone } from '../../schemas.js';

const Sla = z
  .object({
    cron: Cron,
    timezone: Timezone.optional().openapi({ description: 'IANA time zone of the cron expression; default UTC' }),
    keepLast: z.number().int().min(1).max(10_000),
    rpoMinutes: z.number().int().min(1).optional(),
  })
  .strict();
const MinUserScheduleInterval = z
  .number()
  .int()
  .min(USER_SCHEDULE_FLOOR_S.min)
  .max(USER_SCHEDULE_FLOOR_S.max)
  .openapi({
    description: `The fewest seconds between two fires of a tenant's schedule (user or job schedule) of this offering's instances; default ${USER_SCHEDULE_FLOOR_S.default}. Checked when a schedule is set or changed; SLA schedules are not floored.`,
    example: USER_SCHEDULE_FLOOR_S.default,
  });
export const OfferingCreate = z
  .object({
    name: Name,
    description: Text(2000).optional(),
    zone: Zone,
    providerId: Id,
    externalId: Text(255, { required: true }).nullable().optional(),
    allowAdhoc: z.boolean(),
    allowUserSchedules: z.boolean(),
    minUserScheduleIntervalS: MinUserScheduleInterval.optional(),
    sla: Sla.nullable().optional(),
  })
  .strict()
  .openapi('OfferingCreate');
export const Offering = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    description: z.string(),
    zone: z.string(),
    providerId: z.string(),
    externalId: z.string().nullable(),
    allowAdhoc: z.boolean(),
    allowUserSchedules: z.boolean(),
    minUserScheduleIntervalS: z.number().int(),
    sla: z.unknown(),
    createdAt: Time,
  })
  .openapi('Offering');
export const OfferingPage = page(Offering).openapi('OfferingPage');
export const OfferingPatch = z
  .object({
    name: Name.optional(),
    description: Text(2000).optional(),
    allowAdhoc: z.boolean().optional(),
    allowUserSchedules: z.boolean().optional(),
    minUserScheduleIntervalS: MinUserScheduleInterval.optional(),
    sla: Sla.nullable().optional(),
  })
  .strict()
  .openapi('OfferingPatch');
export const GrantCreate = z.object({ tenantId: Id }).strict().openapi('GrantCreate');
export const Grant = z.object({ offeringId: z.string(), tenantId: z.string() }).openapi('Grant');
