import { Worker } from 'node:worker_threads';
import { ErrorCodes, PluginError, type Operation, type ProviderConnection, type TaskContext } from '@cairn/plugin-sdk';
import { guard, type Guarded } from './guard.js';
import { invoke } from './invoke.js';
import type { LoadedPlugin } from './loader.js';
import type { FromWorker, ToWorker, WorkerJob } from './worker-protocol.js';

/**
 * Where plugin code runs: `worker` (default) gives each operation its own worker thread, so a
 * plugin that throws from a timer, calls process.exit() or exhausts its heap fails its task and
 * nothing else; `inline` runs it on the agent's own thread (cheaper; for trusted plugins).
 */
export type PluginIsolation = 'worker' | 'inline';
export const PLUGIN_ISOLATIONS: readonly PluginIsolation[] = ['worker', 'inline'];

export interface OperationCall {
  plugin: LoadedPlugin;
  operation: Operation;
  connection: ProviderConnection;
  /** The parsed `params_json` of the assignment. */
  params: Record<string, unknown>;
  /** Builds the operation's context around the guard's signal. */
  context: (signal: AbortSignal) => TaskContext;
  signal: AbortSignal;
  timeoutMs: number;
  abortGraceMs?: number;
  /** Default `worker` when the plugin's module URL is known. */
  isolation?: PluginIsolation;
}

/**
 * Runs one operation of a plugin through the {@link guard}: creating the provider and calling
 * its method both happen inside it, since both are plugin code.
 */
export async function runOperation(call: OperationCall): Promise<Guarded<unknown>> {
  const options = {
    signal: call.signal,
    timeoutMs: call.timeoutMs,
    ...(call.abortGraceMs === undefined ? {} : { abortGraceMs: call.abortGraceMs }),
  };
  const url = call.plugin.url;
  if ((call.isolation ?? 'worker') === 'inline' || url === undefined) {
    return guard((signal) => {
      const provider = call.plugin.plugin.createProvider(call.connection);
      if (typeof provider !== 'object' || provider === null) {
        throw new PluginError(ErrorCodes.PLUGIN_CRASHED, 'createProvider() returned no provider');
      }
      return invoke(provider, call.operation, call.params, call.context(signal));
    }, options);
  }
  let worker: Worker | undefined;
  try {
    return await guard((signal) => {
      const running = startWorker(call, url, signal);
      worker = running.worker;
      return running.done;
    }, options);
  } finally {
    // The outcome is decided: a worker still running (a plugin ignoring its signal) is stopped.
    void worker?.terminate();
  }
}

/** This module compiled (dist/*.js) or run from source under tsx (src/*.ts, in tests). */
const fromSource = import.meta.url.endsWith('.ts');
const WORKER_ENTRY = new URL(fromSource ? './worker-entry.ts' : './worker-entry.js', import.meta.url);

function startWorker(
  call: OperationCall,
  url: string,
  signal: AbortSignal,
): { worker: Worker; done: Promise<unknown> } {
  const ctx = call.context(signal);
  const job: WorkerJob = {
    url,
    taskId: ctx.taskId,
    attempt: ctx.attempt,
    operation: call.operation,
    connection: call.connection,
    params: call.params,
  };
  const worker = fromSource
    ? // Tests run the agent from TypeScript: the worker registers tsx before loading its entry.
      new Worker(
        `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_ENTRY.href)}); })`,
        { eval: true, workerData: job },
      )
    : new Worker(WORKER_ENTRY, { workerData: job });
  const done = new Promise<unknown>((resolve, reject) => {
    let finished = false;
    const abort = () => {
      const message: ToWorker = {
        type: 'abort',
        message: String((signal.reason as Error | undefined)?.message ?? 'aborted'),
      };
      worker.postMessage(message);
    };
    signal.addEventListener('abort', abort, { once: true });
    worker.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'progress':
          return ctx.progress(message.report);
        case 'event':
          return ctx.event(message.event);
        case 'log':
          return ctx.logger[message.level](message.obj, message.msg);
        case 'done': {
          finished = true;
          signal.removeEventListener('abort', abort);
          if (message.ok) return resolve(message.value);
          // Shaped like what the plugin threw, so the guard maps it as if it ran inline.
          return reject(Object.assign(new Error(message.error.message), message.error));
        }
      }
    });
    worker.on('error', (err) => {
      finished = true;
      reject(new Error(`the plugin crashed its worker: ${err.message}`));
    });
    worker.on('exit', (code) => {
      signal.removeEventListener('abort', abort);
      if (!finished) reject(new Error(`the plugin ended its worker (exit code ${code}) before finishing`));
    });
  });
  return { worker, done };
}
