import { z } from '@hono/zod-openapi';
import { SCHEDULE_OWNERS, SCHEDULE_STATES } from '../../../domain/provider-schedule.js';
import { ForTenant, freeJson, Id, Name, page, Time, Zone } from '../../schemas.js';
import { Task } from '../tasks/schemas.js';

export const InstanceCreate = z
  .object({
    name: Name,
    zone: Zone,
    locator: freeJson<unknown>('value', 'what the plugin needs to find the protected resource; any JSON but null'),
    agentId: Id.nullable().optional(),
    tenantId: ForTenant,
  })
  .strict()
  .openapi('InstanceCreate');
export const Instance = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    zone: z.string(),
    locator: z.unknown(),
    locatorSetBy: z.enum(['sp', 'tenant']).openapi({
      description:
        'who set the locator: an sp-admin (sp), or the tenant (tenant), whose claim the provider connection must grant (tenantLocators)',
    }),
    agentId: z.string().nullable(),
    offeringId: z.string().nullable(),
    schedule: z
      .object({
        owner: z.enum(SCHEDULE_OWNERS).nullable().openapi({
          description:
            'who fires the SLA backups: provider (the backup system, on its own clock), cairn (the provider left it to Cairn), null (no provider was asked: Cairn)',
        }),
        state: z.enum(SCHEDULE_STATES).openapi({
          description:
            'configuring: the assignment waits for the provider; reconfiguring: an SLA change does; deconfiguring: the provider drops the schedule; configured; failed: see the task',
        }),
        taskId: z
          .string()
          .openapi({ description: 'the configure-schedule or deconfigure-schedule task of that state' }),
      })
      .nullable()
      .openapi({ description: 'the provider-side schedule of the instance; null: none (Cairn fires any SLA)' }),
    createdAt: Time,
  })
  .openapi('Instance');
export const InstancePage = page(Instance).openapi('InstancePage');
export const AssignOffering = z.object({ offeringId: Id }).strict().openapi('AssignOffering');
export const BackupStart = z
  .object({ mode: z.enum(['FULL', 'INCREMENT']).default('FULL') })
  .strict()
  .openapi('BackupStart');
export const InstanceAssignment = z
  .object({
    instance: Instance,
    task: Task.openapi({ description: 'the configure-schedule task the assignment waits for' }),
  })
  .openapi('InstanceAssignment');
export const RemoveOfferingQuery = z
  .object({
    force: z
      .enum(['true', 'false'])
      .optional()
      .openapi({ description: 'true: also delete every restore point of the instance through the provider' }),
  })
  .strict();
