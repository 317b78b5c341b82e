import { GoneError } from './errors.js';
import { isTerminal, type TaskState } from './task.js';

/**
 * How long the control plane keeps the history of its work (the service provider's settings):
 * ended tasks, their progress reports, and the event log. Restore points, backup jobs and their
 * run history have retention rules of their own and are not touched by these.
 */
export interface HistoryLimits {
  /** An ended task is forgotten (with its progress reports) this long after it ended. */
  taskMs: number;
  /** A progress report of an ended task is forgotten this long after it was stored. */
  progressMs: number;
  /** An event is forgotten this long after it was logged. */
  eventMs: number;
}

/**
 * What the newest event and progress report were at a time of the control plane's clock: the
 * sweep writes one mark per pass, and forgets a log's rows up to the mark it finds old enough. A
 * row's age is then told by the control plane alone, never by a time an agent reported.
 */
export interface HistoryMark {
  at: number;
  lastEventId: number;
  lastProgressId: number;
}

/** Up to which id each log may be forgotten at `now`, and before which time an ended task may. */
export interface HistoryCuts {
  /** Events with ids up to this are older than the event limit (0: none yet). */
  eventsThrough: number;
  /** Progress reports with ids up to this are older than the progress limit (0: none yet). */
  progressThrough: number;
  /** A task that ended before this time may be forgotten. */
  tasksEndedBefore: number;
  /** Marks older than this are no longer needed by any cut: the sweep removes them. */
  marksBefore: number;
}

/**
 * The newest mark written at or before `time`: every row at or below its ids was stored by then.
 * Undefined when every mark is newer (the history that old is not yet known to be that old).
 */
export function markAtOrBefore(marks: readonly HistoryMark[], time: number): HistoryMark | undefined {
  let found: HistoryMark | undefined;
  for (const m of marks) if (m.at <= time && (!found || m.at > found.at)) found = m;
  return found;
}

/**
 * Where each log is cut at `now`. A log's rows are forgotten only up to the newest mark written
 * at least its limit ago, so nothing is forgotten early, whatever the gaps between the marks
 * (a control plane that was down keeps its history longer, never shorter). Pure.
 *
 * @example historyCuts([{ at: 0, lastEventId: 9, lastProgressId: 4 }], 10 * DAY, limits(7 days)) // → events and progress through 9 and 4
 */
export function historyCuts(marks: readonly HistoryMark[], now: number, limits: HistoryLimits): HistoryCuts {
  const events = markAtOrBefore(marks, now - limits.eventMs);
  const progress = markAtOrBefore(marks, now - limits.progressMs);
  // The oldest mark any cut still reads from: the older of the two in use (none in use: keep all).
  const used = [events, progress].filter((m): m is HistoryMark => m !== undefined);
  const marksBefore = used.length < 2 ? Number.NEGATIVE_INFINITY : Math.min(...used.map((m) => m.at));
  return {
    eventsThrough: events?.lastEventId ?? 0,
    progressThrough: progress?.lastProgressId ?? 0,
    tasksEndedBefore: now - limits.taskMs,
    marksBefore,
  };
}

/** What the sweep knows of a task. */
export interface TaskAge {
  state: string;
  createdAt: number;
  endedAt: number | null;
}

/**
 * Whether a task may be forgotten: it ended, before `endedBefore` (a task ended without an end
 * time counts from its creation). A task queued, dispatched or running is never forgotten, however
 * old. Pure.
 */
export function taskForgettable(task: TaskAge, endedBefore: number): boolean {
  return isTerminal(task.state as TaskState) && (task.endedAt ?? task.createdAt) < endedBefore;
}

/**
 * Refuses a read of the event log that resumes after `after` when events past it are forgotten
 * (every event up to `forgottenThrough` is): the reader would miss them without knowing. It is
 * told where the kept log begins and starts again from there (`after` = `forgottenThrough`).
 * A read from the start (0) is not refused: it reads what is kept. Pure.
 */
export function checkEventsKept(after: number, forgottenThrough: number): void {
  if (after > 0 && after < forgottenThrough)
    throw new GoneError(
      'events_forgotten',
      `events after ${after} up to ${forgottenThrough} are no longer kept; read again from after=${forgottenThrough}`,
      { after: forgottenThrough },
    );
}
