import type { PluginLogger, ProgressReport, TaskContext, TaskEvent } from '@cairn/plugin-sdk';
import type { Logger } from '../logger.js';
import type { Spool } from '../spool/spool.js';

const MAX_MESSAGE = 2000;
const MAX_DATA_JSON = 64 * 1024;

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : 0;
}

function text(value: unknown, max = MAX_MESSAGE): string {
  if (typeof value !== 'string') return '';
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

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

/**
 * Builds the context an operation receives. `progress()` and `event()` spool a report at once
 * (the session sends it from the spool); after `close()`, when the task has ended, they do
 * nothing, so a plugin that keeps going after a cancel or timeout cannot report on a finished
 * attempt.
 */
export function createTaskContext(
  task: { taskId: string; attempt: number },
  signal: AbortSignal,
  spool: Spool,
  log: Logger,
): ClosableContext {
  let closed = false;
  const { taskId, attempt } = task;
  const context: TaskContext = {
    taskId,
    attempt,
    signal,
    logger: pluginLogger(log),
    progress(report: ProgressReport): void {
      if (closed) return;
      try {
        const percent =
          typeof report.percent === 'number' && Number.isFinite(report.percent)
            ? Math.min(100, Math.max(0, report.percent))
            : 0;
        spool.append('progress', {
          taskId,
          attempt,
          percent,
          bytesDone: count(report.bytesDone),
          bytesTotal: count(report.bytesTotal),
          message: text(report.message),
          atMs: Date.now(),
        });
      } catch (err) {
        log.warn({ err }, 'progress report dropped');
      }
    },
    event(event: TaskEvent): void {
      if (closed) return;
      try {
        let dataJson = event.data === undefined || event.data === null ? '' : JSON.stringify(event.data);
        if (dataJson.length > MAX_DATA_JSON) dataJson = '';
        spool.append('event', {
          taskId,
          attempt,
          type: text(event.type, 100) || 'provider.message',
          message: text(event.message),
          dataJson,
          atMs: Date.now(),
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
