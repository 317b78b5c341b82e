import { FailureCodes, PluginError } from '../errors.js';
import type { Operation } from '../manifest.js';
import type { HostAccess, ProviderConnection, TaskContext } from '../provider.js';
import { confineRepository, confineRequest } from '../paths/index.js';
import { guard, type Guarded } from './guard.js';
import { invoke } from './invoke.js';
import type { LoadedPlugin } from './loader.js';
import { DEFAULT_PLUGIN_HEAP_MB, WorkerPool } from './worker-pool.js';

/** The host's plugin worker threads, shared by all tasks. */
export const workers = new WorkerPool();

/**
 * Where plugin code runs: `worker` (default) runs each operation on a worker thread of that
 * plugin (kept warm between tasks, replaced whenever a job does not end cleanly), so a plugin
 * that throws from a timer or calls process.exit() fails its task and nothing
 * else; `inline` runs it on the agent's own thread (for trusted plugins only).
 */
export type PluginIsolation = 'worker' | 'inline';
export const PLUGIN_ISOLATIONS: readonly PluginIsolation[] = ['worker', 'inline'];

export interface OperationCall {
  plugin: LoadedPlugin;
  operation: Operation;
  connection: ProviderConnection;
  /** The parsed `params_json` of the assignment. */
  params: Record<string, unknown>;
  /** What the task may touch on this host; checked here first for `host-paths` plugins. */
  host: HostAccess;
  /** Builds the operation's context around the guard's signal. */
  context: (signal: AbortSignal) => TaskContext;
  signal: AbortSignal;
  timeoutMs: number;
  abortGraceMs?: number;
  /** Default `worker` when the plugin's module URL is known. */
  isolation?: PluginIsolation;
  /** The heap of the plugin's worker, in MB (default {@link DEFAULT_PLUGIN_HEAP_MB}); inline plugins share the agent's. */
  heapMb?: number;
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
  // The agent's own word on its host, before any plugin code runs and whatever the control
  // plane sent: a plugin that forgets its own check still cannot be pointed outside the roots.
  // A repository on the host (the connection's own, for a `host-paths` plugin, and its export
  // target's, whatever plugin exports into it) is judged by one rule: never at the agent's state.
  const hostPaths = call.plugin.manifest.capabilities.includes('host-paths');
  const confine = async () => {
    if (hostPaths) {
      await confineRequest(call.operation, call.params, call.host);
      await confineRepository(call.connection.endpoint, call.host, 'endpoint');
    }
    if (call.connection.exportTo)
      await confineRepository(call.connection.exportTo.endpoint, call.host, 'exportTo.endpoint');
  };
  if ((call.isolation ?? 'worker') === 'inline' || url === undefined) {
    return guard(async (signal) => {
      await confine();
      const provider = call.plugin.plugin.createProvider(call.connection);
      if (typeof provider !== 'object' || provider === null) {
        throw new PluginError(FailureCodes.PLUGIN_CRASHED, 'createProvider() returned no provider');
      }
      return invoke(provider, call.operation, call.params, call.context(signal));
    }, options);
  }
  const lease = workers.lease(url, { heapMb: call.heapMb ?? DEFAULT_PLUGIN_HEAP_MB });
  let clean = false;
  try {
    return await guard(async (signal) => {
      await confine();
      const ctx = call.context(signal);
      const job = {
        taskId: ctx.taskId,
        attempt: ctx.attempt,
        operation: call.operation,
        connection: call.connection,
        params: call.params,
        host: call.host,
      };
      return lease.run(job, ctx, signal).finally(() => {
        // The plugin finished its job (either way) before the guard gave up on it.
        clean = !signal.aborted;
      });
    }, options);
  } finally {
    lease.release(clean);
  }
}
