import type { Operation, PluginManifest } from './manifest.js';

/** A provider connection as the control plane holds it; credentials arrive decrypted. */
export interface ProviderConnection {
  endpoint: string | null;
  config: Record<string, unknown>;
  credentials: Record<string, unknown>;
}

export interface ProgressReport {
  /** 0 to 100. */
  percent: number;
  bytesDone?: number;
  bytesTotal?: number;
  message?: string;
}

export interface TaskEvent {
  /** A short type such as `provider.message` or `warning`. */
  type: string;
  message: string;
  data?: Record<string, unknown>;
}

/** The logger an operation receives (pino-compatible subset). */
export interface PluginLogger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/** What every operation receives besides its request. */
export interface TaskContext {
  taskId: string;
  attempt: number;
  /** Aborted when the task is cancelled or times out; stop promptly and reject. */
  signal: AbortSignal;
  /** Reports progress; the agent spools and forwards it. */
  progress(report: ProgressReport): void;
  /** Records an event visible to the tenant and SP admins. */
  event(event: TaskEvent): void;
  logger: PluginLogger;
}

/** What the plugin is asked to protect: the instance's `locator` is plugin-specific. */
export interface BackupRequest {
  instanceId: string;
  instanceName: string;
  locator: unknown;
  mode: 'FULL' | 'INCREMENT';
  /** The external id of the previous backup, for incremental chains. */
  parentExternalId?: string;
  offeringExternalId?: string;
  /**
   * Set by backup jobs: how to quiesce the instance's file systems first. NONE: not at all;
   * AGENT: through a guest agent (e.g. qemu-guest-agent fsfreeze); SUSPEND: suspend the
   * instance for the snapshot. A plugin that cannot do what is asked fails the backup with a
   * code of its own rather than silently taking a crash-consistent copy.
   */
  fsFreeze?: 'NONE' | 'AGENT' | 'SUSPEND';
  /** The backup job whose run asked for this backup, when one did. */
  jobId?: string;
}

export interface BackupResult {
  externalId: string;
  sizeBytes: number;
  addedBytes?: number;
  mode: 'FULL' | 'INCREMENT';
  parentExternalId?: string;
  extra?: Record<string, unknown>;
}

export interface RestoreRequest {
  instanceId: string;
  locator: unknown;
  backupExternalId: string;
  /** Where to restore to; absent means in place. */
  target?: unknown;
}

export interface RestoreResult {
  bytesRestored?: number;
  extra?: Record<string, unknown>;
}

export interface RestoreVolumeRequest extends RestoreRequest {
  volume: string;
  targetInstanceId: string;
  targetLocator: unknown;
}

export interface DeleteBackupRequest {
  backupExternalId: string;
  locator: unknown;
}

export interface ProviderOffering {
  externalId: string;
  name: string;
  description?: string;
}

export interface ListedBackup {
  externalId: string;
  createdAt: string;
  sizeBytes: number;
  locator?: unknown;
}

/** A connected provider: implements the operations its manifest lists. */
export interface Provider {
  backup?(req: BackupRequest, ctx: TaskContext): Promise<BackupResult>;
  restore?(req: RestoreRequest, ctx: TaskContext): Promise<RestoreResult>;
  restoreVolume?(req: RestoreVolumeRequest, ctx: TaskContext): Promise<RestoreResult>;
  deleteBackup?(req: DeleteBackupRequest, ctx: TaskContext): Promise<void>;
  listOfferings?(ctx: TaskContext): Promise<ProviderOffering[]>;
  sync?(req: { locator?: unknown }, ctx: TaskContext): Promise<ListedBackup[]>;
  preflight?(req: { locator?: unknown }, ctx: TaskContext): Promise<{ ok: boolean; message?: string }>;
}

/** The export of a plugin package. */
export interface ProviderPlugin {
  manifest: PluginManifest;
  createProvider(connection: ProviderConnection): Provider;
}

/** The provider method behind each operation name. */
export const OPERATION_METHODS: Record<Operation, keyof Provider> = {
  backup: 'backup',
  restore: 'restore',
  'restore-volume': 'restoreVolume',
  'delete-backup': 'deleteBackup',
  'list-offerings': 'listOfferings',
  sync: 'sync',
  preflight: 'preflight',
};

/** Identity helper that gives a plugin definition its types. */
export function definePlugin(plugin: ProviderPlugin): ProviderPlugin {
  return plugin;
}
