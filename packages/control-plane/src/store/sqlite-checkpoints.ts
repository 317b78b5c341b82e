import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';

/*
 * SQLite in WAL mode copies the log back into the database file (a checkpoint) once the log
 * holds 1,000 pages, on the connection whose commit crossed that size and inside that commit:
 * on the control plane's one thread, so every tenant's request and every agent session waited
 * for it (8 ms on average, 20 ms at most, a checkpoint every 15 or so commits under the dispatch
 * benchmark). Here a worker thread with a connection of its own checkpoints instead, a few times a
 * second, while the writer goes on (a checkpoint that does not wait for readers or writers:
 * PASSIVE). The writer keeps a checkpoint of its own as a backstop, at a larger log, should the
 * worker fall behind; if the worker cannot run, the writer checkpoints as SQLite does by default.
 */

/** Pages of log at which the writer checkpoints itself while the worker runs (16 MB of 4 KB pages). */
export const BACKSTOP_PAGES = 4000;
/** SQLite's own threshold, the writer's again when the worker cannot run. */
export const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;
/** How often the worker checkpoints when the last one left nothing behind. */
const INTERVAL_MS = 100;
/** How soon it tries again when the last one could not copy the whole log. */
const AGAIN_MS = 20;

/** One checkpoint the worker made, as SQLite reports it: the log's pages, and how many are copied. */
export interface CheckpointReport {
  log: number;
  checkpointed: number;
}

export interface Checkpointer {
  /**
   * Called with each checkpoint that found a log to copy (for tests and diagnostics). The worker
   * reports only once a listener is there: otherwise it never wakes this thread.
   */
  onReport(listener: (report: CheckpointReport) => void): void;
  /** Called once if the worker stopped on its own (at once if it has already). */
  onFailure(listener: (error: Error) => void): void;
  /** Ends the worker once its connection closed (before the writer's own close). */
  stop(): Promise<void>;
}

export interface CheckpointerOptions {
  /** What the worker loads as better-sqlite3 (a test names one that fails). */
  sqliteModule?: string;
}

/** The worker's body: CommonJS, run from this text (no file of its own to find at run time). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const SQLite = require(workerData.sqliteModule);
const db = new SQLite(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
let timer;
let stopped = false;
let reporting = false;
function tick() {
  if (stopped) return;
  const [r] = db.pragma('wal_checkpoint(PASSIVE)');
  if (reporting && r.log > 0) parentPort.postMessage({ log: r.log, checkpointed: r.checkpointed });
  timer = setTimeout(tick, r.checkpointed < r.log ? ${AGAIN_MS} : ${INTERVAL_MS});
}
parentPort.on('message', (message) => {
  if (message === 'report') {
    reporting = true;
    return;
  }
  stopped = true;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
timer = setTimeout(tick, ${INTERVAL_MS});
`;

/**
 * Starts checkpointing the WAL of `file` (opened by `writer`, in WAL mode) on a worker thread,
 * and raises the writer's own checkpoint threshold to {@link BACKSTOP_PAGES}.
 */
export function startCheckpointer(
  writer: SQLite.Database,
  file: string,
  options: CheckpointerOptions = {},
): Checkpointer {
  const sqliteModule = options.sqliteModule ?? createRequire(import.meta.url).resolve('better-sqlite3');
  const listeners: ((report: CheckpointReport) => void)[] = [];
  const failures: ((error: Error) => void)[] = [];
  let failure: Error | undefined;
  let stopping = false;
  const worker = new Worker(WORKER, { eval: true, workerData: { file, sqliteModule } });
  // A worker never keeps the process alive: the store's close stops it.
  worker.unref();
  writer.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const failed = (error: Error) => {
    if (stopping) return;
    stopping = true;
    if (writer.open) writer.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
    failure = error;
    for (const listener of failures) listener(error);
  };
  worker.on('message', (report: CheckpointReport) => {
    for (const listener of listeners) listener(report);
  });
  worker.on('error', (err) => failed(err));
  worker.on('exit', (code) => failed(new Error(`the checkpoint worker ended (exit code ${code})`)));
  return {
    onReport(listener) {
      if (listeners.length === 0 && !stopping) worker.postMessage('report');
      listeners.push(listener);
    },
    onFailure(listener) {
      if (failure) listener(failure);
      else failures.push(listener);
    },
    async stop() {
      if (!stopping) {
        stopping = true;
        worker.postMessage('stop');
      }
      const late = setTimeout(() => void worker.terminate(), 5000);
      await exited;
      clearTimeout(late);
    },
  };
}
