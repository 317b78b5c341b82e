import type { Selectable } from 'kysely';
import { jobIdOf } from '../../../domain/backup-params.js';
import type { TaskProgressRow, TaskRow } from '../../../store/schema.js';
import type { Audience } from '../../audience.js';
import { iso, isoOrNull } from '../../views.js';

export const taskView = (t: TaskRow, to: Audience) => ({
  id: t.id,
  kind: t.kind,
  state: t.state,
  attempt: t.attempt,
  tenantId: t.tenantId,
  instanceId: t.instanceId,
  backupId: t.backupId,
  agentId: t.agentId,
  priority: t.priority,
  jobId: jobIdOf(t),
  progress: {
    percent: t.percent,
    bytesDone: t.bytesDone,
    bytesTotal: t.bytesTotal,
    etaSeconds: t.etaSeconds,
    message: t.progressMessage === null ? null : to.text(t.progressMessage),
  },
  error: t.errorCode ? { code: t.errorCode, message: to.text(t.errorMessage ?? '') } : null,
  output: t.output ? to.json(JSON.parse(t.output) as unknown) : null,
  cancelRequested: t.cancelRequested === 1,
  createdAt: iso(t.createdAt),
  dispatchedAt: isoOrNull(t.dispatchedAt),
  startedAt: isoOrNull(t.startedAt),
  endedAt: isoOrNull(t.endedAt),
});

export const progressView = (p: Selectable<TaskProgressRow>, to: Audience) => ({
  attempt: p.attempt,
  percent: p.percent,
  bytesDone: p.bytesDone,
  bytesTotal: p.bytesTotal,
  message: p.message === null ? null : to.text(p.message),
  at: iso(p.at),
});

/** Where an accepted task is followed: the `Location` of a 202 answer. */
export const taskLocation = (task: { id: string }) => ({ Location: `/v1/tasks/${task.id}` });
