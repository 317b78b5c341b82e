import type { Api } from './api.js';
import type { Proc } from './processes.js';
import { ENDED, waitForTask } from './scenario.js';
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
  /**
   * Of succeeded tasks: progress reports missing (against `steps` each; null when the plugin's
   * reports are not counted in advance), and stored more than once (against `steps`, or, without
   * it, reports identical in attempt, time, percent and bytes: a replay, never a new report).
   */
  progressLost: number | null;
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
 * dummy plugin with `steps` progress reports, or a plugin whose count varies when `steps` is
 * null): records, progress and the event log, and counts
 * what was lost or doubled. Every figure is 0 (or empty) when nothing was. A record of a task
 * outside `ended` counts as one too many, unless `othersAllowed` (a stack that ran other cases).
 */
export async function backupHistory(
  api: Api,
  ended: TaskBody[],
  steps: number | null,
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
    const progress = await allPages<{ attempt: number; at: string; percent: number; bytesDone: number }>(
      api,
      `/v1/tasks/${t.id}/progress`,
    );
    if (steps === null) {
      const distinct = new Set(progress.map((p) => `${p.attempt} ${p.at} ${p.percent} ${p.bytesDone}`));
      progressDoubled += progress.length - distinct.size;
      continue;
    }
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
    progressLost: steps === null ? null : progressLost,
    progressDoubled,
    eventIdsDoubled: events.length - new Set(events.map((e) => e.id)).size,
    endsOff,
    startedOff,
  };
}

/** The history's figures in one line, for a case's printed figures. */
export function historyFigures(h: BackupHistory): string {
  return `backup records ${h.records} (${h.recordsOff.length} off), progress reports lost ${h.progressLost ?? 'not counted'} and doubled ${h.progressDoubled}, event ids doubled ${h.eventIdsDoubled}, tasks with other than one end event ${h.endsOff.length}, started more often than attempted ${h.startedOff.length}`;
}

/** What {@link backupsUnderAgentKills} ended with. */
export interface KilledRun {
  ended: TaskBody[];
  kills: number;
  succeeded: TaskBody[];
  /** Failed `AGENT_INTERRUPTED`: the agent died under them and said so on its next start. */
  interrupted: TaskBody[];
  /** Neither: each of these is a finding. */
  other: TaskBody[];
  /** The run in one line, for a case's printed figures. */
  figures: string;
}

/**
 * F1's workload and fault: an ad-hoc backup of each of `instanceIds` created through the API while
 * a killer takes one of `agents` down with -9 at a seeded random moment every 0.5-2 s and starts
 * it again with `restart(i)` (on the same state directory); waits for every task to end, then
 * stops the killer. `label` starts the figures line.
 */
export async function backupsUnderAgentKills(
  api: Api,
  opts: {
    instanceIds: string[];
    agents: Proc[];
    restart: (i: number) => Promise<Proc>;
    rand: () => number;
    timeoutMs: number;
    label: string;
  },
): Promise<KilledRun> {
  const { rand } = opts;
  const procs = [...opts.agents];
  let kills = 0;
  let stop = false;
  const killer = (async () => {
    while (!stop) {
      await new Promise((resolve) => setTimeout(resolve, 500 + rand() * 1500));
      if (stop) break;
      const which = Math.floor(rand() * procs.length);
      await procs[which]!.kill9();
      kills++;
      procs[which] = await opts.restart(which);
    }
  })();
  const tasks: string[] = [];
  const ended: TaskBody[] = [];
  try {
    for (const instanceId of opts.instanceIds)
      tasks.push(((await api.expect(202, 'POST', `/v1/instances/${instanceId}/backups`)) as { id: string }).id);
    for (const id of tasks) ended.push(await waitForTask(api, id, ENDED, opts.timeoutMs));
  } finally {
    stop = true;
    await killer;
  }
  const succeeded = ended.filter((t) => t.state === 'succeeded');
  const interrupted = ended.filter((t) => t.state === 'failed' && t.error?.code === 'AGENT_INTERRUPTED');
  const other = ended.filter((t) => !succeeded.includes(t) && !interrupted.includes(t));
  const lost = ended.filter((t) => t.state === 'lost').length;
  const figures = `${opts.label}: ${ended.length} backups on ${procs.length} agents, ${kills} kills -9; ${succeeded.length} succeeded, ${interrupted.length} interrupted (failed AGENT_INTERRUPTED), ${lost} lost`;
  return { ended, kills, succeeded, interrupted, other, figures };
}
