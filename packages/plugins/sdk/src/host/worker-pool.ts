import { Worker } from 'node:worker_threads';
import type { TaskContext } from '../provider.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerJob } from './worker-protocol.js';

/** This module compiled (dist/*.js) or run from source under tsx (src/*.ts, in tests). */
const fromSource = import.meta.url.endsWith('.ts');
const ENTRY = new URL(fromSource ? './worker-entry.ts' : './worker-entry.js', import.meta.url);

/** Idle workers kept per plugin module; more are ended when they come back. */
const MAX_IDLE_PER_PLUGIN = 8;

/** The heap a plugin's worker may use unless the agent says otherwise (`--plugin-heap-mb`). */
export const DEFAULT_PLUGIN_HEAP_MB = 512;

/**
 * Bytes of what a plugin writes to stdout and stderr during one job that reach its task's log;
 * the rest is counted, dropped, and said once when the job ends. Output between jobs is dropped.
 */
export const PLUGIN_OUTPUT_LOGGED_BYTES = 16 * 1024;

/** What bounds a plugin's worker thread. */
export interface WorkerLimits {
  /** The worker's V8 old-generation heap, in MB: a plugin that needs more fails its task. */
  heapMb: number;
}

type Stream = 'stdout' | 'stderr';

interface Handlers {
  message(message: FromWorker): void;
  output(stream: Stream, chunk: Buffer): void;
  failed(error: Error): void;
}

/** One worker thread hosting one plugin module; runs one job at a time. */
class PluginWorker {
  readonly thread: Worker;
  alive = true;
  private handlers: Handlers | undefined;

  constructor(url: string, limits: WorkerLimits) {
    const init: WorkerInit = { url };
    // Its own heap limit (a plugin that allocates without end fails its task, not the agent) and
    // its own stdout and stderr (read here and bounded, never copied into the agent's output).
    const options = {
      workerData: init,
      resourceLimits: { maxOldGenerationSizeMb: limits.heapMb },
      stdout: true,
      stderr: true,
    };
    this.thread = fromSource
      ? // Tests run the agent from TypeScript: the worker registers tsx before loading its entry.
        new Worker(
          `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(ENTRY.href)}); })`,
          { ...options, eval: true },
        )
      : new Worker(ENTRY, options);
    this.thread.on('message', (message: FromWorker) => this.handlers?.message(message));
    this.thread.stdout.on('data', (chunk: Buffer) => this.handlers?.output('stdout', chunk));
    this.thread.stderr.on('data', (chunk: Buffer) => this.handlers?.output('stderr', chunk));
    this.thread.on('error', (err: NodeJS.ErrnoException) => {
      this.alive = false;
      this.handlers?.failed(
        new Error(
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? `the plugin ran out of memory: its worker may use ${limits.heapMb} MB of heap (the agent's --plugin-heap-mb)`
            : `the plugin crashed its worker: ${err.message}`,
        ),
      );
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
      const logged = { stdout: 0, stderr: 0 };
      const dropped = { stdout: 0, stderr: 0 };
      const finish = () => {
        this.handlers = undefined;
        signal.removeEventListener('abort', abort);
        for (const stream of ['stdout', 'stderr'] as const) {
          if (dropped[stream] > 0)
            ctx.logger.warn(
              { stream, droppedBytes: dropped[stream] },
              `the plugin wrote ${dropped[stream]} more bytes to ${stream} than the ${PLUGIN_OUTPUT_LOGGED_BYTES} a task logs; they were dropped`,
            );
        }
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
        output: (stream, chunk) => {
          const room = PLUGIN_OUTPUT_LOGGED_BYTES - logged[stream];
          const kept = room > 0 ? chunk.subarray(0, room) : chunk.subarray(0, 0);
          logged[stream] += kept.length;
          dropped[stream] += chunk.length - kept.length;
          for (const line of kept.toString('utf8').split('\n')) {
            if (line.trim() !== '') ctx.logger.warn({ stream }, line);
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

  /**
   * Runs `job` on a worker for the plugin at `url` with these limits. `release` must be called
   * once it is decided.
   */
  lease(
    url: string,
    limits: WorkerLimits = { heapMb: DEFAULT_PLUGIN_HEAP_MB },
  ): { run: PluginWorker['run']; release(clean: boolean): void } {
    const key = `${limits.heapMb}:${url}`;
    const worker = this.idle.get(key)?.pop() ?? new PluginWorker(url, limits);
    worker.thread.ref();
    return {
      run: (job, ctx, signal) => worker.run(job, ctx, signal),
      release: (clean) => {
        const idle = this.idle.get(key) ?? [];
        if (!clean || !worker.alive || idle.length >= MAX_IDLE_PER_PLUGIN) {
          void worker.thread.terminate();
          return;
        }
        // An idle worker never keeps the agent process alive.
        worker.thread.unref();
        idle.push(worker);
        this.idle.set(key, idle);
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
