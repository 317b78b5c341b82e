/**
 * The body of a plugin worker thread: loads one plugin module, then runs the operations the
 * agent sends it, one at a time, talking to the agent only by messages. Whatever the plugin
 * does here — throw from a timer, call process.exit() — ends this thread,
 * never the agent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Operation } from '../manifest.js';
import type { PluginLogger, ProviderConnection, ProviderPlugin, TaskContext } from '../provider.js';
import { toPlain as plain } from './results.js';
import { invoke } from './invoke.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerJob } from './worker-protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);

/**
 * Resolves once everything this thread wrote to `stream` so far has reached the agent. A worker's
 * stdout and stderr travel on a channel of their own, so without this a job's `done` could
 * overtake its last output, which the agent then drops uncounted. The write is the stream's own,
 * taken before the plugin loads; a plugin that ends or breaks the stream only loses the wait.
 */
function flusher(stream: NodeJS.WriteStream): () => Promise<void> {
  const write = stream.write.bind(stream);
  return () =>
    // Nothing waiting: every write so far was taken by the agent (a write's callback waits for that).
    stream.writableLength === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const done = () => {
            stream.off('error', done);
            stream.off('close', done);
            resolve();
          };
          stream.once('error', done);
          stream.once('close', done);
          try {
            write('', () => done());
          } catch {
            done();
          }
        });
}
const flushOutput = [flusher(process.stdout), flusher(process.stderr)];

/** Posts a job's end after its output. */
async function finish(message: FromWorker): Promise<void> {
  await Promise.all(flushOutput.map((flush) => flush()));
  post(message);
}

let plugin: Promise<ProviderPlugin> | undefined;
let current: AbortController | undefined;

function loadPlugin(): Promise<ProviderPlugin> {
  plugin ??= import(init.url).then((mod: Record<string, unknown>) => {
    const found = [mod['default'], mod['plugin']].find(
      (c): c is ProviderPlugin => typeof c === 'object' && c !== null && 'createProvider' in c,
    );
    if (!found) throw new Error(`module ${init.url} no longer exports a plugin`);
    return found;
  });
  return plugin;
}

function log(level: 'debug' | 'info' | 'warn' | 'error') {
  return (obj: object | string, msg?: string) => {
    try {
      post({ type: 'log', level, obj: typeof obj === 'string' ? { msg: obj } : (plain(obj) as object), msg });
    } catch {
      // A log line is never worth failing a task over.
    }
  };
}
const logger: PluginLogger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };

function describe(err: unknown) {
  const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string, unknown>;
  return {
    name: typeof e['name'] === 'string' ? e['name'] : 'Error',
    code: typeof e['code'] === 'string' ? e['code'] : undefined,
    message: typeof e['message'] === 'string' ? e['message'] : String(err),
    retryable: e['retryable'] === true,
  };
}

async function run(job: WorkerJob, controller: AbortController): Promise<void> {
  const context: TaskContext = {
    taskId: job.taskId,
    attempt: job.attempt,
    signal: controller.signal,
    host: job.host,
    logger,
    progress: (report) => post({ type: 'progress', report: plain(report ?? {}) as never }),
    event: (event) => post({ type: 'event', event: plain(event ?? {}) as never }),
  };
  const provider = (await loadPlugin()).createProvider(job.connection as ProviderConnection);
  const value = await invoke(provider, job.operation as Operation, job.params, context);
  await finish({ type: 'done', ok: true, value: plain(value) });
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'abort') {
    const reason = new Error(message.message);
    reason.name = 'AbortError';
    current?.abort(reason);
    return;
  }
  const controller = new AbortController();
  current = controller;
  run(message.job, controller).catch((err: unknown) => finish({ type: 'done', ok: false, error: describe(err) }));
});
