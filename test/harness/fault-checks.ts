import type { Api } from './api.js';
import { allPages } from './lists.js';
import type { TaskBody } from './scenario.js';

/** The events a task ends with; each task has exactly one. */
const END_EVENTS = ['task.succeeded', 'task.failed', 'task.lost', 'task.cancelled'];

/** What the fault suite's checker counts in the history of a set of ended backup tasks. */
export interface BackupHistory {
  /** Backup records of the tasks of `ended`. */
  records: number;
  /** Succeeded tasks without exactly one record, and other tasks with any. */
  recordsOff: string[];
  /** Of succeeded tasks: progress reports missing, and stored more than once (against `steps` each). */
  progressLost: number;
  progressDoubled: number;
  /** Event ids that appear more than once in the event log. */
  eventIdsDoubled: number;
  /** Tasks with other than one end event. */
  endsOff: string[];
  /** Tasks with more `task.started` events than attempts. */
  startedOff: string[];
}

/**
 * Reads through the API what a fault case left of `ended` (backup tasks, each at its end; the
 * dummy plugin with `steps` progress reports): records, progress and the event log, and counts
 * what was lost or doubled. Every figure is 0 (or empty) when nothing was. A record of a task
 * outside `ended` counts as one too many, unless `othersAllowed` (a stack that ran other cases).
 */
export async function backupHistory(
  api: Api,
  ended: TaskBody[],
  steps: number,
  opts: { othersAllowed?: boolean } = {},
): Promise<BackupHistory> {
  const backups = await allPages<{ taskId: string }>(api, '/v1/backups');
  const records = new Map<string, number>();
  for (const b of backups) records.set(b.taskId, (records.get(b.taskId) ?? 0) + 1);
  const recordsOff: string[] = [];
  let progressLost = 0;
  let progressDoubled = 0;
  for (const t of ended) {
    const want = t.state === 'succeeded' ? 1 : 0;
    if ((records.get(t.id) ?? 0) !== want) recordsOff.push(`${t.id} (${t.state}): ${records.get(t.id) ?? 0} records`);
    if (t.state !== 'succeeded') continue;
    const progress = await allPages<{ percent: number }>(api, `/v1/tasks/${t.id}/progress`);
    progressLost += Math.max(0, steps - progress.length);
    progressDoubled += Math.max(0, progress.length - steps);
  }
  const known = new Set(ended.map((t) => t.id));
  if (!opts.othersAllowed)
    for (const taskId of records.keys()) if (!known.has(taskId)) recordsOff.push(`${taskId}: a record of no task here`);

  const events = await allPages<{ id: string; type: string; taskId: string | null }>(api, '/v1/events');
  const endsOff: string[] = [];
  const startedOff: string[] = [];
  for (const t of ended) {
    const mine = events.filter((e) => e.taskId === t.id);
    const ends = mine.filter((e) => END_EVENTS.includes(e.type)).length;
    if (ends !== 1) endsOff.push(`${t.id}: ${ends} end events`);
    const started = mine.filter((e) => e.type === 'task.started').length;
    if (started > t.attempt) startedOff.push(`${t.id}: started ${started} times at attempt ${t.attempt}`);
  }
  return {
    records: backups.filter((b) => known.has(b.taskId)).length,
    recordsOff,
    progressLost,
    progressDoubled,
    eventIdsDoubled: events.length - new Set(events.map((e) => e.id)).size,
    endsOff,
    startedOff,
  };
}

/** The history's figures in one line, for a case's printed figures. */
export function historyFigures(h: BackupHistory): string {
  return `backup records ${h.records} (${h.recordsOff.length} off), progress reports lost ${h.progressLost} and doubled ${h.progressDoubled}, event ids doubled ${h.eventIdsDoubled}, tasks with other than one end event ${h.endsOff.length}, started more often than attempted ${h.startedOff.length}`;
}
