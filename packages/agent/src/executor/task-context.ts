import type { HostAccess, PluginLogger, ProgressReport, TaskContext, TaskEvent } from '@cairn/plugin-sdk';
import { EVENT_PACE, normalizeEvent, normalizeProgress, PROGRESS_PACE } from '@cairn/plugin-sdk/host';
import { EVENTS_DROPPED_EVENT, reservedEventType } from '@cairn/proto/vocabulary';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Spool } from '../spool/spool.js';
import { SendBucket } from '../token-bucket.js';

/** A pino logger behind the SDK's small logger interface; logging never throws into a plugin. */
function pluginLogger(log: Logger): PluginLogger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (obj: object | string, msg?: string): void => {
      try {
        if (typeof obj === 'string') log[level](obj);
        else log[level](obj, msg);
      } catch {
        // A log line is never worth failing a task over.
      }
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A task context plus the switch that stops it from reporting once the task has ended. */
export interface ClosableContext {
  context: TaskContext;
  close(): void;
}

/** What a task context is built from. */
export interface TaskContextParts {
  task: { taskId: string; attempt: number };
  signal: AbortSignal;
  host: HostAccess;
  spool: Spool;
  /** Stamps the reports (`atMs`). */
  clock: Clock;
  log: Logger;
}

/**
 * Builds the context an operation receives. `progress()` and `event()` spool a report at once
 * (the session sends it from the spool), within {@link PROGRESS_PACE} and {@link EVENT_PACE};
 * `close()`, when the task has ended, spools the progress still waiting and the count of dropped
 * events, and from then on they do nothing, so a plugin that keeps going after a cancel or
 * timeout cannot report on a finished attempt.
 */
export function createTaskContext({ task, signal, host, spool, clock, log }: TaskContextParts): ClosableContext {
  let closed = false;
  const { taskId, attempt } = task;
  const progressBucket = new SendBucket(PROGRESS_PACE.perSecond, PROGRESS_PACE.burst, clock.now());
  const eventBucket = new SendBucket(EVENT_PACE.perSecond, EVENT_PACE.burst, clock.now());
  let waiting: ProgressReport | undefined;
  let waitTimer: NodeJS.Timeout | undefined;
  let droppedEvents = 0;
  const refusedTypes = new Set<string>();

  const spoolProgress = (report: ProgressReport): void => {
    try {
      spool.append('progress', { taskId, attempt, ...normalizeProgress(report), atMs: clock.now() });
    } catch (err) {
      log.warn({ err }, 'progress report dropped');
    }
  };
  const spoolEvent = (event: TaskEvent): void => {
    try {
      spool.append('event', { taskId, attempt, ...normalizeEvent(event), atMs: clock.now() });
    } catch (err) {
      log.warn({ err }, 'task event dropped');
    }
  };
  const sendWaiting = (): void => {
    waitTimer = undefined;
    if (closed || waiting === undefined) return;
    if (!progressBucket.take(clock.now())) return void wait();
    const report = waiting;
    waiting = undefined;
    spoolProgress(report);
  };
  const wait = (): void => {
    if (waitTimer !== undefined) return;
    waitTimer = setTimeout(sendWaiting, Math.max(1, progressBucket.waitMs(clock.now())));
    waitTimer.unref();
  };

  const context: TaskContext = {
    taskId,
    attempt,
    signal,
    host,
    logger: pluginLogger(log),
    progress(report: ProgressReport): void {
      if (closed) return;
      if (waiting === undefined && progressBucket.take(clock.now())) return spoolProgress(report);
      // A copy: an inline plugin may reuse its object for the next report.
      waiting = { ...report };
      wait();
    },
    event(event: TaskEvent): void {
      if (closed) return;
      // sync.page among them: the pages of a listing are the agent's to send (sync-pages.ts).
      if (typeof event?.type === 'string' && reservedEventType(event.type)) {
        if (!refusedTypes.has(event.type) && refusedTypes.size < 20) {
          refusedTypes.add(event.type);
          log.warn(
            { type: event.type },
            "a plugin may not emit an event of the control plane's own types; it was dropped",
          );
        }
        return;
      }
      if (eventBucket.take(clock.now())) return spoolEvent(event);
      droppedEvents++;
    },
  };
  return {
    context,
    close: () => {
      if (closed) return;
      closed = true;
      clearTimeout(waitTimer);
      if (waiting !== undefined) spoolProgress(waiting);
      waiting = undefined;
      if (droppedEvents > 0) {
        log.warn({ droppedEvents }, 'the plugin sent events faster than a task may; the excess was dropped');
        spoolEvent({
          type: EVENTS_DROPPED_EVENT,
          message: `${droppedEvents} events of this task were dropped: a task may send ${EVENT_PACE.burst} at once, then ${EVENT_PACE.perSecond} a second`,
          data: { dropped: droppedEvents },
        });
      }
    },
  };
}
