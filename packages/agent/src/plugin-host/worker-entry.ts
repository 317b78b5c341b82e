/**
 * The body of a plugin worker thread: loads the plugin module, runs one operation, and talks to
 * the agent only by messages. Whatever the plugin does here — throw from a timer, call
 * process.exit(), run out of heap — ends this thread, never the agent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Operation, PluginLogger, ProviderConnection, ProviderPlugin, TaskContext } from '@cairn/plugin-sdk';
import { invoke } from './invoke.js';
import type { ToWorker, WorkerJob, FromWorker } from './worker-protocol.js';

const job = workerData as WorkerJob;
const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);

const controller = new AbortController();
port.on('message', (message: ToWorker) => {
  if (message.type === 'abort') {
    const reason = new Error(message.message);
    reason.name = 'AbortError';
    controller.abort(reason);
  }
});

function log(level: 'debug' | 'info' | 'warn' | 'error') {
  return (obj: object | string, msg?: string) => {
    try {
      post({ type: 'log', level, obj: typeof obj === 'string' ? { msg: obj } : JSON.parse(JSON.stringify(obj)), msg });
    } catch {
      // A log line is never worth failing a task over.
    }
  };
}
const logger: PluginLogger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };

const context: TaskContext = {
  taskId: job.taskId,
  attempt: job.attempt,
  signal: controller.signal,
  logger,
  progress: (report) => post({ type: 'progress', report: JSON.parse(JSON.stringify(report ?? {})) }),
  event: (event) => post({ type: 'event', event: JSON.parse(JSON.stringify(event ?? {})) }),
};

function describe(err: unknown) {
  const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string, unknown>;
  return {
    name: typeof e['name'] === 'string' ? e['name'] : 'Error',
    code: typeof e['code'] === 'string' ? e['code'] : undefined,
    message: typeof e['message'] === 'string' ? e['message'] : String(err),
    retryable: e['retryable'] === true,
  };
}

async function main(): Promise<void> {
  const mod = (await import(job.url)) as Record<string, unknown>;
  const plugin = [mod['default'], mod['plugin']].find(
    (c): c is ProviderPlugin => typeof c === 'object' && c !== null && 'createProvider' in c,
  );
  if (!plugin) throw new Error(`module ${job.url} no longer exports a plugin`);
  const provider = plugin.createProvider(job.connection as ProviderConnection);
  const value = await invoke(provider, job.operation as Operation, job.params, context);
  post({ type: 'done', ok: true, value: value === undefined ? null : JSON.parse(JSON.stringify(value)) });
}

main().catch((err: unknown) => post({ type: 'done', ok: false, error: describe(err) }));
