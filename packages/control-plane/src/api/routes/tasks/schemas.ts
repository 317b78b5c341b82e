import { z } from '@hono/zod-openapi';
import { TASK_KINDS, TASK_STATES } from '../../../domain/task.js';
import { Id, page, PageQuery, Time } from '../../schemas.js';

export const TaskQuery = PageQuery.extend({
  state: z.enum(TASK_STATES).optional(),
  kind: z.enum(TASK_KINDS).optional(),
  instanceId: Id.optional(),
}).strict();
export const Task = z
  .object({
    id: z.string(),
    kind: z.string(),
    state: z.string(),
    attempt: z.number().int(),
    tenantId: z.string(),
    instanceId: z.string().nullable(),
    backupId: z.string().nullable(),
    agentId: z.string().nullable(),
    priority: z.number().int(),
    jobId: z.string().nullable().openapi({ description: 'the backup job whose run made this backup task' }),
    progress: z.object({
      percent: z.number(),
      bytesDone: z.number(),
      bytesTotal: z.number(),
      etaSeconds: z.number().nullable(),
      message: z.string().nullable(),
    }),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    output: z.unknown(),
    cancelRequested: z.boolean(),
    createdAt: Time,
    dispatchedAt: Time.nullable(),
    startedAt: Time.nullable(),
    endedAt: Time.nullable(),
  })
  .openapi('Task');
export const TaskPage = page(Task).openapi('TaskPage');
export const TaskList = z.object({ items: z.array(Task) }).openapi('TaskList');
export const Progress = z
  .object({
    attempt: z.number().int(),
    percent: z.number(),
    bytesDone: z.number(),
    bytesTotal: z.number(),
    message: z.string().nullable(),
    at: Time,
  })
  .openapi('Progress');
export const ProgressPage = page(Progress).openapi('ProgressPage');
