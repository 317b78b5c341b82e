import type { ProgressReport, TaskEvent } from '../provider.js';

/** One operation for a plugin worker thread. */
export interface WorkerJob {
  taskId: string;
  attempt: number;
  operation: string;
  connection: unknown;
  params: Record<string, unknown>;
  host: { roots: readonly string[]; denied: readonly string[] };
}

/** What a worker thread is started with: the plugin module it hosts, for its whole life. */
export interface WorkerInit {
  /** file: URL of the plugin module, as the agent resolved it at start-up. */
  url: string;
}

/** Agent → worker. A worker runs one job at a time. */
export type ToWorker = { type: 'run'; job: WorkerJob } | { type: 'abort'; message: string };

/** Worker → agent, about the job it runs. Values cross as plain JSON data. */
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
