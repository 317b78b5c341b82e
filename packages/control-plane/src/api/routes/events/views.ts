import type { Selectable } from 'kysely';
import { etaSeconds } from '../../../domain/task.js';
import type { LiveProgress } from '../../../store/event-repository.js';
import type { EventRow } from '../../../store/schema.js';
import type { Audience } from '../../audience.js';
import { iso } from '../../views.js';

export const eventView = (e: Selectable<EventRow>, to: Audience) => ({
  id: String(e.id),
  tenantId: e.tenantId,
  type: e.type,
  at: iso(e.at),
  message: to.text(e.message),
  taskId: e.taskId,
  instanceId: e.instanceId,
  jobId: e.jobId,
  agentId: e.agentId,
  data: e.data ? eventData(JSON.parse(e.data) as unknown, to) : null,
});

/** A maintenance event names the token that set the window: only for the SP's eyes. */
function eventData(data: unknown, to: Audience): unknown {
  if (to.spAdmin) return data;
  const shown = to.json(data);
  return typeof shown === 'object' && shown !== null && 'setBy' in shown ? { ...shown, setBy: null } : shown;
}

/** A task's latest progress as a live stream sends it (`task.progress`). */
export const liveProgressView = (p: LiveProgress, to: Audience) => ({
  taskId: p.taskId,
  tenantId: p.tenantId,
  percent: p.percent,
  bytesDone: p.bytesDone,
  bytesTotal: p.bytesTotal,
  etaSeconds: etaSeconds(p.startedAt, p.at, p.percent),
  message: p.message === null ? null : to.text(p.message),
  at: iso(p.at),
});
