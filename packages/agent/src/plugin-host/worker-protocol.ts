import type { ProgressReport, TaskEvent } from '@cairn/plugin-sdk';

/** What a plugin worker thread is started with. */
export interface WorkerJob {
  /** file: URL of the plugin module, as the agent resolved it at start-up. */
  url: string;
  taskId: string;
  attempt: number;
  operation: string;
  connection: unknown;
  params: Record<string, unknown>;
}

/** Agent → worker. */
export type ToWorker = { type: 'abort'; message: string };

/** Worker → agent. Values cross as plain JSON data. */
export type FromWorker =
  | { type: 'progress'; report: ProgressReport }
  | { type: 'event'; event: TaskEvent }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; obj: object; msg: string | undefined }
  | { type: 'done'; ok: true; value: unknown }
  | {
      type: 'done';
      ok: false;
      error: { name: string; code: string | undefined; message: string; retryable: boolean };
    };
