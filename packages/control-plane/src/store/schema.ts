import type { Generated } from 'kysely';

/** Row types as Kysely sees them (camelCase; the CamelCasePlugin maps to snake_case columns). */
export interface TenantRow {
  id: string;
  name: string;
  createdAt: number;
}
/** A count quota the service provider set for a tenant (see domain/quotas.ts). */
export interface TenantQuotaRow {
  tenantId: string;
  quota: string;
  quotaLimit: number;
  updatedAt: number;
}
/**
 * Each instance's newest restore point record (the highest id), as the bytes protected count it
 * (migration 0041): kept by the writers of the instance's records, under this row's lock.
 */
export interface NewestBackupRow {
  instanceId: string;
  /** The newest record's (its instance's) tenant. */
  tenantId: string;
  /** Null while the instance has no record. */
  backupId: string | null;
  offeringId: string | null;
  sizeBytes: number | null;
  /**
   * When the instance's newest restore point was made as far as the RPO watch trusts it (the
   * latest of its records' createdAt, each no later than its recording); null while it has none.
   */
  lastBackupAt: number | null;
}
/** What a tenant has of a count quota kept as a count (store/tenant-counts.ts). */
export interface TenantCountRow {
  tenantId: string;
  quota: string;
  used: number;
}
/** Ended tasks of one state and kind still in the store (store/task-counts.ts). */
export interface TaskCountRow {
  state: string;
  kind: string;
  n: number;
}
/** A tenant's restore points in an offering, kept with the records by BackupRepository. */
export interface RestorePointUsageRow {
  tenantId: string;
  offeringId: string;
  /** As the per-offering quotas count: records not vanished and with no delete under way. */
  restorePoints: number;
  /** Their sizes. */
  bytes: number;
  /** As billing counts: every record. */
  records: number;
  /** Their added bytes (an incremental's), or else their sizes. */
  storedBytes: number;
  /**
   * As the usage report's bytes protected count (migration 0041): the size of each instance's
   * newest record (the highest id), counted under that record's offering.
   */
  protectedBytes: number;
}
export interface ApiTokenRow {
  id: string;
  tenantId: string;
  role: string;
  name: string;
  tokenHash: string;
  /** 'config' for the token taken from CAIRN_ADMIN_TOKEN, 'api' for tokens minted through the API. */
  source: string;
  createdAt: number;
}
export interface AgentEnrollmentRow {
  id: string;
  tokenHash: string;
  zone: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  agentId: string | null;
}
export interface AgentRow {
  id: string;
  name: string;
  zone: string;
  hostname: string;
  credentialHash: string;
  state: string;
  sessionId: string | null;
  slots: number;
  plugins: string;
  agentVersion: string;
  draining: number;
  drainMessage: string | null;
  lastSeenAt: number | null;
  createdAt: number;
  /** Set when the agent was deleted: the row stays so tasks and events naming it keep making sense. */
  revokedAt: number | null;
  /** A rotated credential the agent has not yet authenticated with (hash, and sealed for re-sending). */
  pendingCredentialHash: string | null;
  pendingCredentialEnc: string | null;
  rotationRequestedAt: number | null;
  credentialRotatedAt: number | null;
}
export interface ProviderRow {
  id: string;
  zone: string;
  name: string;
  plugin: string;
  /** As shown: a password in it replaced by `***`. */
  endpoint: string | null;
  /** The whole endpoint, sealed, when it holds a password. */
  endpointEnc: string | null;
  config: string;
  credentialsEnc: string | null;
  createdAt: number;
  updatedAt: number;
  /** Who may claim locators through it (migration 0014, domain/locator-claims.ts). */
  tenantLocators: string;
  /**
   * The identity of the repository it reached (restic's repository id), recorded at its first
   * contact and sent with every task; null until then or after an SP admin cleared it (0019).
   */
  repositoryIdentity: string | null;
  /** The connection of the zone it exports into (migration 0029): sent with its tasks; null: none. */
  exportTo: string | null;
}
/** The host roots a tenant was granted on a provider connection (migration 0014). */
export interface ProviderTenantRootsRow {
  providerId: string;
  tenantId: string;
  /** JSON list of absolute paths. */
  roots: string;
  createdAt: number;
  updatedAt: number;
}
/** An offering's SLA: its schedule and keep-last (`offerings.sla`, as JSON). */
/** A plugin an agent's hello named (the agents table keeps the list as JSON). */
export interface AgentPlugin {
  name: string;
  version: string;
  apiVersion: number;
  capabilities: string[];
}

export interface Sla {
  cron: string;
  timezone?: string;
  keepLast: number;
  rpoMinutes?: number;
}

export interface OfferingRow {
  id: string;
  tenantId: string;
  name: string;
  description: string;
  zone: string;
  providerId: string;
  externalId: string | null;
  allowAdhoc: number;
  allowUserSchedules: number;
  /** The fewest seconds between two fires of a tenant's schedule of its instances (migration 0022). */
  minUserScheduleIntervalS: number;
  /** The {@link Sla}, as JSON. */
  sla: string | null;
  createdAt: number;
  /** When the SLA was last set, by the scheduler's clock (migration 0007); null: createdAt. */
  slaSetAt: number | null;
  /** Its SLA's next fire time (migration 0023; see UserScheduleRow.nextFireAt). */
  nextFireAt?: number | null;
}
export interface OfferingGrantRow {
  offeringId: string;
  tenantId: string;
  createdAt: number;
}
export interface InstanceRow {
  id: string;
  tenantId: string;
  name: string;
  zone: string;
  locator: string;
  agentId: string | null;
  offeringId: string | null;
  createdAt: number;
  /** When it got its offering, by the scheduler's clock (migration 0011); null: no offering, or set before. */
  offeringSetAt: number | null;
  /** Who fires the SLA backups: null, 'cairn' or 'provider' (migration 0010, domain/provider-schedule.ts). */
  scheduleOwner: string | null;
  /** What the schedule waits for: null, configuring, reconfiguring, deconfiguring, configured, failed. */
  scheduleState: string | null;
  /** The configure-schedule or deconfigure-schedule task the state belongs to. */
  scheduleTaskId: string | null;
  /** Who set the locator: 'sp' or 'tenant' (migration 0014). */
  locatorClaim: string;
}
export interface TaskRow {
  id: string;
  kind: string;
  state: string;
  attempt: number;
  tenantId: string;
  instanceId: string | null;
  backupId: string | null;
  offeringId: string | null;
  providerId: string;
  plugin: string;
  zone: string;
  pinnedAgentId: string | null;
  agentId: string | null;
  priority: number;
  params: string;
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  progressMessage: string | null;
  etaSeconds: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  output: string | null;
  cancelRequested: number;
  /** Sends of the current attempt's assignment not yet accepted (migration 0004). */
  deliveries: number;
  leaseExpiresAt: number | null;
  createdAt: number;
  dispatchedAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
}
export interface TaskProgressRow {
  id: Generated<number>;
  taskId: string;
  attempt: number;
  agentId: string;
  spoolSeq: number;
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  message: string | null;
  at: number;
}
export interface EventRow {
  id: Generated<number>;
  tenantId: string;
  type: string;
  at: number;
  message: string;
  taskId: string | null;
  instanceId: string | null;
  jobId: string | null;
  agentId: string | null;
  data: string | null;
  sourceAgentId: string | null;
  sourceSeq: number | null;
}
export interface BackupRow {
  id: string;
  tenantId: string;
  instanceId: string;
  offeringId: string;
  taskId: string | null;
  name: string;
  mode: string;
  createdAt: number;
  sizeBytes: number;
  addedBytes: number | null;
  externalId: string;
  parentId: string | null;
  expiresAt: number | null;
  /** The delete-backup task removing this restore point through the provider (migration 0008). */
  deleteTaskId: string | null;
  /** When a sync found the restore point gone from its provider (migration 0009); null: not vanished. */
  vanishedAt: number | null;
  /**
   * When the control plane recorded the restore point (migration 0017), what keep-last ranks by:
   * after every earlier record of the instance for a backup Cairn made, never after the time of
   * recording for one a sync found (domain/retention.ts).
   */
  recordedAt: number;
}
export interface IdempotencyKeyRow {
  /** The API token that made the request: a record answers only the principal that made it. */
  principalId: string;
  idemKey: string;
  requestHash: string;
  /** 0 while the request runs; its HTTP status once it committed. */
  status: number;
  /** The answer, sealed (it may hold a secret shown once, such as a new token). */
  body: string;
  location: string | null;
  /** Who holds the claim now: a retry that takes over an expired claim gets a new one. */
  claimToken: string;
  leaseExpiresAt: number;
  createdAt: number;
}

export interface UserScheduleRow {
  instanceId: string;
  tenantId: string;
  cron: string;
  timezone: string;
  keepLast: number;
  createdAt: number;
  updatedAt: number;
  /**
   * Its next fire time by the scheduler's clock (migration 0023): null until the scheduler has
   * computed it (after a create or change), NO_NEXT_FIRE when it has none.
   */
  nextFireAt?: number | null;
}
/** One claimed fire of a schedule (`user:<instance>` or `sla:<offering>`); unique per key and time. */
export interface ScheduleFireRow {
  scheduleKey: string;
  fireAt: number;
  /** Earlier fire times that passed while no process ran and were folded into this one. */
  missed: number;
  createdAt: number;
}

/** Per provider connection: its sync under way, and the last applied sync's drift report (migration 0009). */
export interface ProviderSyncRow {
  providerId: string;
  activeTaskId: string | null;
  taskId: string | null;
  syncedAt: number | null;
  /** The drift report as JSON. */
  report: string | null;
  createdAt: number;
  /** When its syncs began to be held for too many points vanishing at once; null: not held (migration 0018). */
  heldSince: number | null;
  /** The sync task an operator confirmed: it marks points vanished past the share (migration 0018). */
  confirmTaskId: string | null;
}

/** A page of a sync task's listing (migration 0027); the rows go when the task ends. */
export interface SyncPageRow {
  taskId: string;
  attempt: number;
  page: number;
  /** Restore points on the page. */
  points: number;
  /** Why the page cannot be read; null: it can. */
  bad: string | null;
  /** The page's restore points, a JSON array. */
  body: string;
}

/** An instance in breach of its offering's RPO (migration 0011); the row goes when it recovers. */
export interface RpoStateRow {
  instanceId: string;
  tenantId: string;
  rpoMinutes: number;
  /** Its newest restore point when the breach was raised; null: it had none. */
  lastBackupAt: number | null;
  breachedAt: number;
}

export interface EventClockRow {
  id: number;
  ticks: number;
}

/** Counts API token removals (migration 0025): replicas forget their cached principals when it moves. */
export interface AuthEpochRow {
  id: number;
  epoch: number;
}

/** What the newest event and progress report were at a time of the scheduler's clock (migration 0040). */
export interface HistoryMarkRow {
  /** The sweep's interval the mark claims (one pass per interval). */
  intervalAt: number;
  /** When the ids were read. */
  at: number;
  lastEventId: number;
  lastProgressId: number;
}
/** How far the history sweep has forgotten each log (migration 0040): one row, id 1. */
export interface HistoryStateRow {
  id: number;
  /** Every event with an id up to this is forgotten. */
  eventsThrough: number;
  /** Every progress report up to this id is forgotten, but those of tasks not yet ended then. */
  progressThrough: number;
}

/** A periodic duty's lease (migration 0028): the replica that runs it for all, and until when. */
export interface DutyLeaseRow {
  duty: string;
  holder: string;
  expiresAt: number;
  /** When its holder took it (kept while the same holder renews). */
  heldSince: number;
}

/** A backup job (migration 0012): an ordered list of instances under one policy. */
export interface BackupJobRow {
  id: string;
  tenantId: string;
  name: string;
  /** JSON array of instance ids, in backup order. */
  instanceIds: string;
  mode: string;
  /** 1: the next run starts new chains (every backup FULL); cleared when that run starts. */
  reset: number;
  keepLast: number | null;
  fsFreeze: string;
  priority: number;
  execution: string;
  locked: number;
  /** The run going now; set only by a compare-and-set from null. */
  activeRunId: string | null;
  lastRunId: string | null;
  createdAt: number;
  updatedAt: number;
  /** Its schedules (migration 0037), kept with them: what the schedulesPerJob quota counts. */
  scheduleCount: number;
  /** The length of `instanceIds` (migration 0037), kept with it: what the quotas' usage reads for membersPerJob. */
  memberCount: number;
}
export interface BackupJobScheduleRow {
  id: string;
  jobId: string;
  /** Its job's tenant (migration 0039), moved with the job: a tenant's schedules in fire order come from one index. */
  tenantId: string;
  cron: string;
  timezone: string;
  endAfterRuns: number | null;
  endAt: number | null;
  /** Runs this schedule started. */
  runs: number;
  createdAt: number;
  updatedAt: number;
  /**
   * Its next fire time by the scheduler's clock (migration 0023): null until the scheduler has
   * computed it (after a create or change), NO_NEXT_FIRE when it has none.
   */
  nextFireAt?: number | null;
}
/** A job as written: what it counts of its schedules and members, the repository counts. */
export type NewJob = Omit<BackupJobRow, 'scheduleCount' | 'memberCount'>;
/** A job's schedule as written: its tenant is its job's, which the repository fills in. */
export type NewJobSchedule = Omit<BackupJobScheduleRow, 'tenantId'>;

export interface BackupJobRunRow {
  id: string;
  jobId: string;
  tenantId: string;
  trigger: string;
  scheduleId: string | null;
  state: string;
  reset: number;
  cancelled: number;
  startedAt: number;
  endedAt: number | null;
}
export interface BackupJobMemberRow {
  runId: string;
  position: number;
  jobId: string;
  instanceId: string;
  set: string;
  taskId: string | null;
  errorCode: string | null;
  errorMessage: string | null;
}

/** A maintenance scope (migration 0013): `global`, `zone:<zone>` or `agent:<id>`. */
export interface MaintenanceScopeRow {
  scopeKey: string;
  kind: string;
  zone: string | null;
  agentId: string | null;
  enabled: number;
  message: string;
  /** Who made the last change: the API token as JSON ({tokenId, role}). */
  setBy: string | null;
  setAt: number;
  /** When the window became ready (no backup running); set once per window, cleared on enabling. */
  readyAt: number | null;
}

export interface Database {
  tenants: TenantRow;
  tenantQuotas: TenantQuotaRow;
  restorePointUsage: RestorePointUsageRow;
  newestBackups: NewestBackupRow;
  tenantCounts: TenantCountRow;
  taskCounts: TaskCountRow;
  apiTokens: ApiTokenRow;
  agentEnrollments: AgentEnrollmentRow;
  agents: AgentRow;
  providers: ProviderRow;
  providerTenantRoots: ProviderTenantRootsRow;
  offerings: OfferingRow;
  offeringGrants: OfferingGrantRow;
  instances: InstanceRow;
  tasks: TaskRow;
  taskProgress: TaskProgressRow;
  events: EventRow;
  backups: BackupRow;
  idempotencyKeys: IdempotencyKeyRow;
  eventClock: EventClockRow;
  authEpoch: AuthEpochRow;
  dutyLeases: DutyLeaseRow;
  historyMarks: HistoryMarkRow;
  historyState: HistoryStateRow;
  userSchedules: UserScheduleRow;
  scheduleFires: ScheduleFireRow;
  providerSyncs: ProviderSyncRow;
  syncPages: SyncPageRow;
  rpoState: RpoStateRow;
  backupJobs: BackupJobRow;
  backupJobSchedules: BackupJobScheduleRow;
  backupJobRuns: BackupJobRunRow;
  backupJobMembers: BackupJobMemberRow;
  maintenanceScopes: MaintenanceScopeRow;
}
