import {
  ErrorCodes,
  OPERATION_METHODS,
  PluginError,
  type BackupRequest,
  type DeleteBackupRequest,
  type Operation,
  type Provider,
  type ProviderConnection,
  type RestoreRequest,
  type RestoreVolumeRequest,
  type TaskContext,
} from '@cairn/plugin-sdk';
import { guard, type Guarded } from './guard.js';
import type { LoadedPlugin } from './loader.js';

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
}

/** Calls the provider method behind `operation` with the argument shape the SDK defines for it. */
function invoke(
  provider: Provider,
  operation: Operation,
  params: Record<string, unknown>,
  ctx: TaskContext,
): Promise<unknown> {
  const method = OPERATION_METHODS[operation];
  if (typeof provider[method] !== 'function') {
    throw new PluginError(
      ErrorCodes.UNSUPPORTED_OPERATION,
      `the plugin lists ${operation} but implements no ${method}()`,
    );
  }
  // The request shapes are the plugin's contract; the control plane builds them and the plugin
  // validates what it reads, so they are passed on as they came.
  switch (operation) {
    case 'backup':
      return provider.backup!(params as unknown as BackupRequest, ctx);
    case 'restore':
      return provider.restore!(params as unknown as RestoreRequest, ctx);
    case 'restore-volume':
      return provider.restoreVolume!(params as unknown as RestoreVolumeRequest, ctx);
    case 'delete-backup':
      return provider.deleteBackup!(params as unknown as DeleteBackupRequest, ctx);
    case 'list-offerings':
      return provider.listOfferings!(ctx);
    case 'sync':
      return provider.sync!(params as { locator?: unknown }, ctx);
    case 'preflight':
      return provider.preflight!(params as { locator?: unknown }, ctx);
  }
}

/**
 * Runs one operation of a plugin through the {@link guard}: creating the provider and calling
 * its method both happen inside it, since both are plugin code.
 */
export function runOperation(call: OperationCall): Promise<Guarded<unknown>> {
  return guard(
    (signal) => {
      const provider = call.plugin.plugin.createProvider(call.connection);
      if (typeof provider !== 'object' || provider === null) {
        throw new PluginError(ErrorCodes.PLUGIN_CRASHED, 'createProvider() returned no provider');
      }
      return invoke(provider, call.operation, call.params, call.context(signal));
    },
    {
      signal: call.signal,
      timeoutMs: call.timeoutMs,
      ...(call.abortGraceMs === undefined ? {} : { abortGraceMs: call.abortGraceMs }),
    },
  );
}
