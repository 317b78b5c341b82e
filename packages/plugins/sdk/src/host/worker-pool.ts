import { Worker } from 'node:worker_threads';
import type { TaskContext } from '../provider.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerJob } from './worker-protocol.js';

/** This module compiled (dist/*.js) or run from source under tsx (src/*.ts, in tests). */
const fromSource = import.meta.url.endsWith('.ts');
const ENTRY = new URL(fromSource ? './worker-entry.ts' : './worker-entry.js', import.meta.url);

/** Idle workers kept per plugin module; more are ended when they come back. */
const MAX_IDLE_PER_PLUGIN = 8;

interface Handlers {
  message(message: FromWorker): void;
  failed(error: Error): void;
}

/** One worker thread hosting one plugin module; runs one job at a time. */
class PluginWorker {
  readonly thread: Worker;
  alive = true;
  private handlers: Handlers | undefined;

  constructor(url: string) {
    const init: WorkerInit = { url };
    this.thread = fromSource
      ? // Tests run the agent from TypeScript: the worker registers tsx before loading its entry.
        new Worker(
          `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(ENTRY.href)}); })`,
          { eval: true, workerData: init },
        )
      : new Worker(ENTRY, { workerData: init });
    this.thread.on('message', (message: FromWorker) => this.handlers?.message(message));
    this.thread.on('error', (err) => {
      this.alive = false;
      this.handlers?.failed(new Error(`the plugin crashed its worker: ${err.message}`));
    });
    this.thread.on('exit', (code) => {
      this.alive = false;
      this.handlers?.failed(new Error(`the plugin ended its worker (exit code ${code}) before finishing`));
    });
  }

  /** Runs one job; settles with the plugin's value, or rejects with what it threw or how it died. */
  run(job: WorkerJob, ctx: TaskContext, signal: AbortSignal): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const abort = () => {
        const reason = signal.reason as { message?: unknown } | undefined;
        this.send({ type: 'abort', message: String(reason?.message ?? 'aborted') });
      };
      const finish = () => {
        this.handlers = undefined;
        signal.removeEventListener('abort', abort);
      };
      this.handlers = {
        message: (message) => {
          switch (message.type) {
            case 'progress':
              return ctx.progress(message.report);
            case 'event':
              return ctx.event(message.event);
            case 'log':
              return ctx.logger[message.level](message.obj, message.msg);
            case 'done':
              finish();
              // Shaped like what the plugin threw, so the guard maps it as if it ran inline.
              return message.ok ? resolve(message.value) : reject(Object.assign(new Error(), message.error));
          }
        },
        failed: (error) => {
          finish();
          reject(error);
        },
      };
      signal.addEventListener('abort', abort, { once: true });
      this.send({ type: 'run', job });
      if (signal.aborted) abort();
    });
  }

  private send(message: ToWorker): void {
    if (this.alive) this.thread.postMessage(message);
  }
}

/**
 * Worker threads for plugin operations, kept warm per plugin module: starting a thread and
 * loading a plugin costs tens of milliseconds, paid once per worker instead of once per task.
 * A worker whose job did not end cleanly (the plugin was stopped, crashed or exited) is never
 * reused.
 */
export class WorkerPool {
  private readonly idle = new Map<string, PluginWorker[]>();

  /** Runs `job` on a worker for the plugin at `url`. `release` must be called once it is decided. */
  lease(url: string): { run: PluginWorker['run']; release(clean: boolean): void } {
    const worker = this.idle.get(url)?.pop() ?? new PluginWorker(url);
    worker.thread.ref();
    return {
      run: (job, ctx, signal) => worker.run(job, ctx, signal),
      release: (clean) => {
        const idle = this.idle.get(url) ?? [];
        if (!clean || !worker.alive || idle.length >= MAX_IDLE_PER_PLUGIN) {
          void worker.thread.terminate();
          return;
        }
        // An idle worker never keeps the agent process alive.
        worker.thread.unref();
        idle.push(worker);
        this.idle.set(url, idle);
      },
    };
  }

  /** Ends every idle worker (agent shutdown). */
  async close(): Promise<void> {
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(all.map((w) => w.thread.terminate()));
  }
}
