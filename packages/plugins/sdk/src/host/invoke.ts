import { FailureCodes, PluginError } from '../errors.js';
import type { Operation } from '../manifest.js';
import {
  OPERATION_METHODS,
  type BackupRequest,
  type ConfigureScheduleRequest,
  type DeconfigureScheduleRequest,
  type DeleteBackupRequest,
  type PowerStateRequest,
  type Provider,
  type RestoreRequest,
  type RestoreVolumeRequest,
  type TaskContext,
} from '../provider.js';

/** Calls the provider method behind `operation` with the argument shape the SDK defines for it. */
export function invoke(
  provider: Provider,
  operation: Operation,
  params: Record<string, unknown>,
  ctx: TaskContext,
): Promise<unknown> {
  const method = OPERATION_METHODS[operation];
  if (typeof provider[method] !== 'function') {
    throw new PluginError(
      FailureCodes.UNSUPPORTED_OPERATION,
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
    case 'power-state':
      return provider.powerState!(params as unknown as PowerStateRequest, ctx);
    case 'configure-schedule':
      return provider.configureSchedule!(params as unknown as ConfigureScheduleRequest, ctx);
    case 'deconfigure-schedule':
      return provider.deconfigureSchedule!(params as unknown as DeconfigureScheduleRequest, ctx);
    case 'prune':
      return provider.prune!(ctx);
  }
}
