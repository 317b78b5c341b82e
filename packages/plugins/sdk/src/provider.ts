import type { Operation, PluginManifest } from './manifest.js';

/**
 * What a task may touch on the agent's host, from the agent's own configuration (never from the
 * control plane): a plugin that declares `host-paths` reads and writes only below `roots`, and
 * never at, inside or above a `denied` path (the agent's state directory: its credential, journal
 * and spool).
 */
export interface HostAccess {
  /** Absolute directories this task may read from and write to (already narrowed to its tenant). */
  roots: readonly string[];
  /** Absolute paths never backed up nor restored into, nor any path inside or above them. */
  denied: readonly string[];
}
/** A provider connection as the control plane holds it; credentials arrive decrypted. */
export interface ProviderConnection {
  endpoint: string | null;
  config: Record<string, unknown>;
  credentials: Record<string, unknown>;
  /**
   * The identity of the repository this connection reached before (e.g. restic's repository id),
   * as the control plane recorded it; absent until one is recorded, or after an SP admin cleared
   * it. A plugin that declares `repository-identity` checks it on every operation that opens the
   * repository: another repository there fails `REPOSITORY_CHANGED` before anything changes, and
   * without an identity it reports the one it found (`checkRepositoryIdentity`).
   */
  identity?: string;
  /**
   * Another connection of the same zone this one names as its export target (`exportTo` on the
   * connection), as it is when the task is dispatched: its plugin, endpoint, config, decrypted
   * credentials and recorded identity. A plugin that copies its backups elsewhere (the CSI
   * provider's export into a restic repository) reads where and how from it. Never itself has an
   * `exportTo` (the control plane refuses chains). The agent checks its shape, and a host-path
   * endpoint in it is judged as the task's own would be.
   */
  exportTo?: ProviderConnection & { plugin: string };
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
  /**
   * Records an event visible to the tenant and SP admins; the type `repository.identity` is
   * reserved for `reportIdentity`, and recorded without being shown.
   */
  event(event: TaskEvent): void;
  logger: PluginLogger;
  /**
   * What this task may touch on the agent's host, from the agent's own configuration. A plugin
   * that reads or writes host paths checks them with `confinePath` and restores through
   * `makeStaging` + `placeRestored`.
   */
  host: HostAccess;
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
  /**
   * Where to restore to; absent means in place. A plugin that declares `restore-to-path` accepts
   * a {@link RestoreToPathTarget}.
   */
  target?: unknown;
  /**
   * Set on an in-place restore through a plugin that declares `restore-requires-stopped`: the
   * control plane found the instance stopped, but it may have been started since. The plugin
   * refuses (PluginError `INSTANCE_RUNNING`) if the instance runs now.
   */
  requireStopped?: boolean;
}

/**
 * The restore target of a plugin that declares `restore-to-path`: an empty directory on the
 * agent's host. The restore writes each file of the point below it, either at its path relative
 * to the directory the locator named (a backup of `/srv/www` restores `/srv/www/a/b.txt` as
 * `<path>/a/b.txt`) or at its absolute path (`<path>/srv/www/a/b.txt`, as restic does); the
 * plugin documents which.
 */
export interface RestoreToPathTarget {
  path: string;
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
  /**
   * The instance whose point this is (the control plane always sends it; absent only from an older
   * control plane). A plugin that stores the instance id with each point deletes nothing of
   * another instance: it fails `BACKUP_NOT_FOUND` when the point is there but names another
   * instance (several connections, or tenants, may share one repository).
   */
  instanceId?: string;
}

export interface ProviderOffering {
  externalId: string;
  name: string;
  description?: string;
}

/**
 * One restore point as `sync` lists it. The control plane matches it to its records by
 * `externalId`, and an unrecorded one only to the instance `locator.instanceId` names (the
 * instance id the plugin stored with the point), if that instance is on this provider connection;
 * a point naming no instance is never adopted, whatever its locator.
 */
export interface ListedBackup {
  /** Non-empty, at most 255 characters. */
  externalId: string;
  /** ISO 8601 time. */
  createdAt: string;
  /** A non-negative integer. */
  sizeBytes: number;
  locator?: unknown;
  mode?: 'FULL' | 'INCREMENT';
  /** The point an increment builds on; null or absent for a full. */
  parentExternalId?: string | null;
  /** ISO 8601 time after which the control plane deletes the point through you (its next sync). */
  expiresAt?: string | null;
}

export interface PowerStateRequest {
  instanceId: string;
  locator: unknown;
}

export interface PowerStateResult {
  state: 'running' | 'stopped' | 'unknown';
}

/**
 * One check of a preflight: `name` is a short stable identifier (`repository-reachable`),
 * `message` says what was found, `advice` (for a failed check) what to do about it.
 */
export interface PreflightCheck {
  name: string;
  ok: boolean;
  message: string;
  advice?: string;
}

/**
 * What a preflight is asked: with `locator`, that instance is checked too; with `initialise`
 * (only an SP admin asks it), a repository that does not exist yet is created, and the check that
 * found it missing says so. Without `initialise` a missing repository is a failed check: no other
 * operation ever creates one.
 */
export interface PreflightRequest {
  locator?: unknown;
  initialise?: boolean;
}

/** The SLA of an offering, as the backup system is asked to run it. */
export interface ScheduleSla {
  cron: string;
  /** IANA time zone of `cron`. */
  timezone: string;
  /** How many restore points of the instance to keep. */
  keepLast: number;
}

/** Run this instance's SLA schedule in the backup system (the plugin declares `provider-schedules`). */
export interface ConfigureScheduleRequest {
  instanceId: string;
  instanceName: string;
  locator: unknown;
  offeringExternalId?: string;
  sla: ScheduleSla;
}

export interface ConfigureScheduleResult {
  /**
   * `true`: the backup system now runs this instance's schedule on its own clock, and Cairn fires
   * no SLA backups for it. `false`: the plugin leaves the clock to Cairn (e.g. this connection or
   * offering has no schedule of its own). Anything but `true` counts as `false`.
   */
  managed: boolean;
}

/** Stop running this instance's schedule in the backup system (it left the offering or its SLA went). */
export interface DeconfigureScheduleRequest {
  instanceId: string;
  locator: unknown;
  offeringExternalId?: string;
}

/** A connected provider: implements the operations its manifest lists. */
export interface Provider {
  backup?(req: BackupRequest, ctx: TaskContext): Promise<BackupResult>;
  restore?(req: RestoreRequest, ctx: TaskContext): Promise<RestoreResult>;
  restoreVolume?(req: RestoreVolumeRequest, ctx: TaskContext): Promise<RestoreResult>;
  deleteBackup?(req: DeleteBackupRequest, ctx: TaskContext): Promise<void>;
  listOfferings?(ctx: TaskContext): Promise<ProviderOffering[]>;
  sync?(req: { locator?: unknown }, ctx: TaskContext): Promise<ListedBackup[]>;
  /**
   * Checks that the connection (and, given a locator, that instance) can be backed up: answer one
   * check per thing looked at. `ok` must be every check's `ok`. Without `checks`, the answer
   * counts as one check named `preflight`. Never put credentials in a message: the agent blanks
   * every credential value it finds there.
   */
  preflight?(
    req: PreflightRequest,
    ctx: TaskContext,
  ): Promise<{ ok: boolean; message?: string; checks?: PreflightCheck[] }>;
  /** Answers quickly: the control plane waits for it inside an API request. */
  powerState?(req: PowerStateRequest, ctx: TaskContext): Promise<PowerStateResult>;
  /** Sets up (or changes) the instance's schedule in the backup system; may be called again with a new SLA. */
  configureSchedule?(req: ConfigureScheduleRequest, ctx: TaskContext): Promise<ConfigureScheduleResult>;
  /** Removes the instance's schedule; a schedule already gone is not an error. */
  deconfigureSchedule?(req: DeconfigureScheduleRequest, ctx: TaskContext): Promise<void>;
  /**
   * The repository's housekeeping that may hold it exclusively for long (restic: `prune`, which
   * frees what forgotten snapshots held). The control plane runs it on its own schedule per
   * connection (daily by default, paused by maintenance), so `deleteBackup` should only forget:
   * quick, and never a lock a tenant's delete holds over everyone else's backups.
   */
  prune?(ctx: TaskContext): Promise<PruneResult | void>;
}

/** What a prune did, for the task's output (all optional). */
export interface PruneResult {
  /** Bytes the repository no longer holds. */
  freedBytes?: number;
  message?: string;
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
  'power-state': 'powerState',
  'configure-schedule': 'configureSchedule',
  'deconfigure-schedule': 'deconfigureSchedule',
  prune: 'prune',
};

/** Identity helper that gives a plugin definition its types. */
export function definePlugin(plugin: ProviderPlugin): ProviderPlugin {
  return plugin;
}
