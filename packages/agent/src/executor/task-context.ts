import type { HostAccess, PluginLogger, ProgressReport, TaskContext, TaskEvent } from '@cairn/plugin-sdk';
import { normalizeEvent, normalizeProgress } from '@cairn/plugin-sdk/host';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Spool } from '../spool/spool.js';

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
 * (the session sends it from the spool); after `close()`, when the task has ended, they do
 * nothing, so a plugin that keeps going after a cancel or timeout cannot report on a finished
 * attempt.
 */
export function createTaskContext({ task, signal, host, spool, clock, log }: TaskContextParts): ClosableContext {
  let closed = false;
  const { taskId, attempt } = task;
  const context: TaskContext = {
    taskId,
    attempt,
    signal,
    host,
    logger: pluginLogger(log),
    progress(report: ProgressReport): void {
      if (closed) return;
      try {
        spool.append('progress', {
          taskId,
          attempt,
          ...normalizeProgress(report),
          atMs: clock.now(),
        });
      } catch (err) {
        log.warn({ err }, 'progress report dropped');
      }
    },
    event(event: TaskEvent): void {
      if (closed) return;
      try {
        spool.append('event', {
          taskId,
          attempt,
          ...normalizeEvent(event),
          atMs: clock.now(),
        });
      } catch (err) {
        log.warn({ err }, 'task event dropped');
      }
    },
  };
  return {
    context,
    close: () => {
      closed = true;
    },
  };
}
