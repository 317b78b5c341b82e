import type { ProgressReport, TaskEvent } from '../provider.js';

/** Longest progress or event message the agent forwards; longer ones are cut. */
export const MAX_REPORT_MESSAGE = 2000;
/** Longest event type; longer ones are cut. */
export const MAX_EVENT_TYPE = 100;
/** Largest event `data` (as JSON) the agent forwards; larger data is dropped, the event kept. */
export const MAX_EVENT_DATA_JSON = 64 * 1024;

/** A progress report as the agent forwards it. */
export interface ProgressRecord {
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  message: string;
}

/** A task event as the agent forwards it. */
export interface EventRecord {
  type: string;
  message: string;
  /** The event's `data` as JSON, `''` when it has none (or it was too large). */
  dataJson: string;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : 0;
}

function text(value: unknown, max: number, notes: string[] | undefined, what: string): string {
  if (typeof value !== 'string') return '';
  if (value.length <= max) return value;
  notes?.push(`${what} is ${value.length} characters; it was cut to ${max}`);
  return `${value.slice(0, max - 1)}…`;
}

/**
 * Brings a plugin's progress report into range, as the agent does before forwarding it:
 * `percent` clamped to 0–100 (0 when not a number), byte counts non-negative integers (0 when
 * absent), the message a string of at most {@link MAX_REPORT_MESSAGE} characters. What had to be
 * adjusted is described in `notes`, when given.
 *
 * @example normalizeProgress({ percent: 150 }) // → { percent: 100, bytesDone: 0, bytesTotal: 0, message: '' }
 */
export function normalizeProgress(report: ProgressReport, notes?: string[]): ProgressRecord {
  const raw = report.percent as unknown;
  const finite = typeof raw === 'number' && Number.isFinite(raw);
  const percent = finite ? Math.min(100, Math.max(0, raw)) : 0;
  if (!finite) notes?.push(`progress percent ${JSON.stringify(raw)} is not a number; it was taken as 0`);
  else if (percent !== raw) notes?.push(`progress percent ${raw} is outside 0-100; it was taken as ${percent}`);
  return {
    percent,
    bytesDone: count(report.bytesDone),
    bytesTotal: count(report.bytesTotal),
    message: text(report.message, MAX_REPORT_MESSAGE, notes, 'a progress message'),
  };
}

/**
 * Brings a plugin's task event into range, as the agent does before forwarding it: the type cut
 * to {@link MAX_EVENT_TYPE} characters (`provider.message` when empty), the message to
 * {@link MAX_REPORT_MESSAGE}, and `data` dropped when its JSON exceeds {@link MAX_EVENT_DATA_JSON}.
 * Throws when `data` cannot be serialised (the agent then drops the event).
 *
 * @example normalizeEvent({ type: '', message: 'hi' }) // → { type: 'provider.message', message: 'hi', dataJson: '' }
 */
export function normalizeEvent(event: TaskEvent, notes?: string[]): EventRecord {
  let dataJson = event.data === undefined || event.data === null ? '' : JSON.stringify(event.data);
  if (dataJson.length > MAX_EVENT_DATA_JSON) {
    notes?.push(`event data is ${dataJson.length} bytes of JSON, over ${MAX_EVENT_DATA_JSON}; it was dropped`);
    dataJson = '';
  }
  return {
    type: text(event.type, MAX_EVENT_TYPE, notes, 'an event type') || 'provider.message',
    message: text(event.message, MAX_REPORT_MESSAGE, notes, 'an event message'),
    dataJson,
  };
}

/**
 * How many progress reports a task spools: a burst, then so many a second. A report that finds
 * the bucket empty waits, replaced by any newer one, until the bucket has a token or the task
 * ends; so a plugin reporting in a tight loop costs the agent and the control plane a few
 * reports a second, and the last value always arrives.
 */
export const PROGRESS_PACE = { burst: 50, perSecond: 25 } as const;

/**
 * How many events a task spools: a burst, then so many a second. Beyond that they are dropped
 * and counted, and one `agent.events_dropped` event says how many when the task ends.
 */
export const EVENT_PACE = { burst: 200, perSecond: 20 } as const;
