import type { BackupJobRow, BackupJobScheduleRow } from '../store/schema.js';

/**
 * A backup job's row as the API would write it (FULL, sequential, unlocked, no run yet), for
 * tests that write jobs straight to the store; `fields` overrides any column.
 */
export function jobRow(
  fields: Pick<BackupJobRow, 'id' | 'tenantId' | 'createdAt'> & Partial<BackupJobRow>,
): BackupJobRow {
  return {
    name: fields.id,
    instanceIds: '[]',
    mode: 'FULL',
    reset: 0,
    keepLast: null,
    fsFreeze: 'NONE',
    priority: 0,
    execution: 'SEQUENTIAL',
    locked: 0,
    activeRunId: null,
    lastRunId: null,
    updatedAt: fields.createdAt,
    scheduleCount: 0,
    memberCount: (JSON.parse(fields.instanceIds ?? '[]') as unknown[]).length,
    ...fields,
  };
}

/** A daily schedule of a job (03:00 UTC, no end), for tests that write schedules straight to the store. */
export function jobScheduleRow(
  id: string,
  job: Pick<BackupJobRow, 'id' | 'tenantId'>,
  at: number,
): BackupJobScheduleRow {
  return {
    id,
    jobId: job.id,
    tenantId: job.tenantId,
    cron: '0 3 * * *',
    timezone: 'UTC',
    endAfterRuns: null,
    endAt: null,
    runs: 0,
    createdAt: at,
    updatedAt: at,
  };
}
