import { z } from '@hono/zod-openapi';
import { QUOTAS } from '../../../domain/quotas.js';
import { Cron, ForTenant, Id, IdParam, Name, page, Time, Timezone } from '../../schemas.js';

const JobInstanceIds = z
  .array(Id)
  .min(1)
  .max(QUOTAS.membersPerJob.ceiling)
  .superRefine((ids, ctx) => {
    const seen = new Map<string, number>();
    ids.forEach((id, i) => {
      const first = seen.get(id);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i], message: `repeats instanceIds.${first}` });
      else seen.set(id, i);
    });
  })
  .openapi({ description: 'the instances in backup order, no duplicates; 1 up to the membersPerJob quota' });
const JobMode = z.enum(['FULL', 'INCREMENT']);
const FsFreeze = z.enum(['NONE', 'AGENT', 'SUSPEND']);
const Execution = z.enum(['SEQUENTIAL', 'PARALLEL']);
const JobPriority = z
  .number()
  .int()
  .min(0)
  .max(99)
  .openapi({ description: "0-49 for a tenant; 50-99 is the service provider's band (403 for a tenant)" });
const ScheduleEnd = z
  .union([
    z.object({ afterRuns: z.number().int().min(1).max(1_000_000) }).strict(),
    z.object({ at: z.string().datetime({ offset: true }) }).strict(),
  ])
  .nullable()
  .openapi({ description: 'ends after N runs it started, or at a time; null: never' });
export const JobScheduleBody = z
  .object({ cron: Cron, timezone: Timezone.optional(), end: ScheduleEnd.optional() })
  .strict()
  .openapi('JobScheduleBody');
export const JobSchedulePatch = z
  .object({ cron: Cron.optional(), timezone: Timezone.optional(), end: ScheduleEnd.optional() })
  .strict()
  .openapi('JobSchedulePatch');
export const JobCreate = z
  .object({
    name: Name,
    instanceIds: JobInstanceIds,
    mode: JobMode,
    reset: z.boolean().optional(),
    keepLast: z.number().int().min(1).max(10_000).nullable().optional(),
    fsFreeze: FsFreeze.optional(),
    priority: JobPriority.optional(),
    execution: Execution,
    schedules: z
      .array(JobScheduleBody)
      .max(QUOTAS.schedulesPerJob.ceiling)
      .optional()
      .openapi({ description: 'at most the schedulesPerJob quota' }),
    tenantId: ForTenant,
  })
  .strict()
  .openapi('BackupJobCreate');
export const JobPatch = z
  .object({
    name: Name.optional(),
    instanceIds: JobInstanceIds.optional(),
    mode: JobMode.optional(),
    reset: z.boolean().optional(),
    keepLast: z.number().int().min(1).max(10_000).nullable().optional(),
    fsFreeze: FsFreeze.optional(),
    priority: JobPriority.optional(),
    execution: Execution.optional(),
    tenantId: Id.optional().openapi({ description: "sp-admin only: the job's new owning tenant" }),
  })
  .strict()
  .openapi('BackupJobPatch');
const JobScheduleEndView = z.union([z.object({ afterRuns: z.number().int() }), z.object({ at: Time })]).nullable();
export const JobSchedule = z
  .object({
    id: z.string(),
    cron: z.string(),
    timezone: z.string(),
    end: JobScheduleEndView,
    runs: z.number().int(),
    nextRunAt: Time.nullable(),
  })
  .openapi('BackupJobSchedule');
const JobSetsView = z.object({
  outdated: z.array(z.string()),
  ongoing: z.array(z.string()),
  updated: z.array(z.string()),
  error: z.array(z.string()),
});
export const Job = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    instanceIds: z.array(z.string()),
    mode: JobMode,
    reset: z.boolean(),
    keepLast: z.number().int().nullable(),
    fsFreeze: FsFreeze,
    priority: z.number().int(),
    execution: Execution,
    locked: z.boolean(),
    schedules: z.array(JobSchedule),
    sets: JobSetsView,
    lastRun: z
      .object({ id: z.string(), startedAt: Time, durationSeconds: z.number().int(), state: z.string() })
      .nullable(),
    progress: z
      .object({
        percent: z.number(),
        bytesDone: z.number(),
        bytesTotal: z.number(),
        etaSeconds: z.number().int().nullable(),
      })
      .nullable(),
  })
  .openapi('BackupJob');
export const JobPage = page(Job).openapi('BackupJobPage');
export const JobRunMember = z
  .object({
    instanceId: z.string(),
    set: z.enum(['OUTDATED', 'ONGOING', 'UPDATED', 'ERROR']),
    taskId: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  })
  .openapi('BackupJobRunMember');
export const JobRun = z
  .object({
    id: z.string(),
    trigger: z.enum(['run', 'schedule', 'retry']),
    startedAt: Time,
    endedAt: Time.nullable(),
    durationSeconds: z.number().int(),
    state: z.string(),
    memberCounts: z
      .object({
        total: z.number().int(),
        outdated: z.number().int(),
        ongoing: z.number().int(),
        updated: z.number().int(),
        error: z.number().int(),
      })
      .openapi({ description: "the run's members by set" }),
    members: z
      .array(JobRunMember)
      .openapi({ description: 'the first members in the job order; page them all at …/runs/{runId}/members' }),
  })
  .openapi('BackupJobRun');
export const JobRunPage = page(JobRun).openapi('BackupJobRunPage');
export const JobRunMemberPage = page(JobRunMember).openapi('BackupJobRunMemberPage');
export const JobRunParams = IdParam.extend({
  runId: z.string().openapi({ param: { name: 'runId', in: 'path' } }),
});
export const JobScheduleParams = IdParam.extend({
  sid: z.string().openapi({ param: { name: 'sid', in: 'path' } }),
});
