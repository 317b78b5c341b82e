import { z } from '@hono/zod-openapi';
import { decimal, Id, page, PageQuery, Time } from '../../schemas.js';

export const EventQuery = PageQuery.extend({
  after: decimal(0, Number.MAX_SAFE_INTEGER)
    .optional()
    .openapi({ description: 'start after this event id (as the stream does); instead of cursor' }),
}).strict();
// Without `after` (or Last-Event-ID) a stream starts at the end of the log: live events only.
export const EventStreamQuery = z
  .object({
    after: decimal(0, Number.MAX_SAFE_INTEGER).optional(),
    taskId: Id.optional().openapi({ description: 'only this task’s events and progress' }),
    jobId: Id.optional().openapi({ description: 'only the events and progress of this backup job’s runs and tasks' }),
    instanceId: Id.optional().openapi({ description: 'only this instance’s events and its tasks’ progress' }),
    tenantId: Id.optional().openapi({
      description: 'only what this tenant reads (sp-admin: any tenant; a tenant: its own only, another is 404)',
    }),
    type: z
      .string()
      .regex(/^[a-z0-9._-]{1,64}$/, 'a type prefix: lowercase letters, digits, dots, dashes and underscores (up to 64)')
      .optional()
      .openapi({ description: 'only events whose type starts with this (e.g. `task.`)' }),
  })
  .strict();
export const Event = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    type: z.string(),
    at: Time,
    message: z.string(),
    taskId: z.string().nullable(),
    instanceId: z.string().nullable(),
    jobId: z.string().nullable(),
    agentId: z.string().nullable(),
    data: z.unknown(),
  })
  .openapi('Event');
export const EventPage = page(Event).openapi('EventPage');
