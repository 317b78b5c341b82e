import type { TenantLocators } from '../domain/locator-claims.js';
import { jobIdOf } from '../domain/backup-params.js';
import type { Selectable } from 'kysely';
import type { Role } from '../domain/access.js';
import type { ScheduleOwner, ScheduleState } from '../domain/provider-schedule.js';
import { scopeFields, type MaintenanceSource } from '../domain/maintenance.js';
import type { MaintenanceState } from '../service/maintenance.js';
import type { AgentState } from '../service/agents.js';
import type { AgentView, ZoneView } from '../store/agent-repository.js';
import type { TokenInfo } from '../store/tenant-repository.js';
import type {
  BackupRow,
  EventRow,
  InstanceRow,
  OfferingRow,
  ProviderRow,
  TaskProgressRow,
  TaskRow,
  TenantRow,
} from '../store/schema.js';
import type { StoredDrift } from '../store/sync-repository.js';
import type { LiveProgress } from '../store/event-repository.js';
import { etaSeconds } from '../domain/task.js';
import type { Audience } from './audience.js';

/** Row → API shape (the bodies of docs/api.md). Times become RFC 3339 strings. */
const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export const tenantView = (t: TenantRow) => ({ id: t.id, name: t.name, createdAt: iso(t.createdAt) });

export const agentView = (
  a: AgentView,
  maintenance: { enabled: boolean; message: string; source: MaintenanceSource },
) => ({
  id: a.id,
  name: a.name,
  zone: a.zone,
  hostname: a.hostname,
  state: a.state,
  slots: a.slots,
  plugins: a.plugins,
  runningTasks: a.runningTasks,
  maintenance,
  agentVersion: a.agentVersion,
  lastSeenAt: isoOrNull(a.lastSeenAt),
  createdAt: iso(a.createdAt),
  credential: {
    rotation: a.rotationPending ? ('pending' as const) : ('none' as const),
    requestedAt: isoOrNull(a.rotationRequestedAt),
    rotatedAt: isoOrNull(a.credentialRotatedAt),
  },
});

/** An agent with its own maintenance, as the API shows it. */
export const agentStateView = (s: AgentState) => agentView(s.agent, s.maintenance);

/** A zone with its agents' states; the agents themselves only when `agents` (the sp-admin's view) is given. */
export const zoneView = (z: ZoneView, agents?: ReturnType<typeof agentView>[]) => ({
  zone: z.zone,
  agentStates: {
    connected: z.agents.filter((a) => a.state === 'connected').length,
    disconnected: z.agents.filter((a) => a.state === 'disconnected').length,
    draining: z.agents.filter((a) => a.state === 'draining').length,
  },
  ...(agents ? { agents } : {}),
});

export const tokenView = (t: TokenInfo) => ({
  id: t.id,
  tenantId: t.tenantId,
  role: t.role as Role,
  name: t.name,
  source: t.source === 'config' ? ('config' as const) : ('api' as const),
  createdAt: iso(t.createdAt),
});

export const providerView = (p: ProviderRow) => ({
  id: p.id,
  zone: p.zone,
  name: p.name,
  plugin: p.plugin,
  endpoint: p.endpoint,
  config: JSON.parse(p.config) as unknown,
  hasCredentials: p.credentialsEnc !== null,
  tenantLocators: p.tenantLocators as TenantLocators,
  repositoryIdentity: p.repositoryIdentity,
  createdAt: iso(p.createdAt),
  updatedAt: iso(p.updatedAt),
});

export const offeringView = (o: OfferingRow) => ({
  id: o.id,
  tenantId: o.tenantId,
  name: o.name,
  description: o.description,
  zone: o.zone,
  providerId: o.providerId,
  externalId: o.externalId,
  allowAdhoc: o.allowAdhoc === 1,
  allowUserSchedules: o.allowUserSchedules === 1,
  minUserScheduleIntervalS: o.minUserScheduleIntervalS,
  sla: o.sla ? (JSON.parse(o.sla) as unknown) : null,
  createdAt: iso(o.createdAt),
});

export const instanceView = (i: InstanceRow) => ({
  id: i.id,
  tenantId: i.tenantId,
  name: i.name,
  zone: i.zone,
  locator: JSON.parse(i.locator) as unknown,
  locatorSetBy: i.locatorClaim === 'sp' ? ('sp' as const) : ('tenant' as const),
  agentId: i.agentId,
  offeringId: i.offeringId,
  schedule:
    i.scheduleState === null || i.scheduleTaskId === null
      ? null
      : {
          owner: i.scheduleOwner as ScheduleOwner | null,
          state: i.scheduleState as ScheduleState,
          taskId: i.scheduleTaskId,
        },
  createdAt: iso(i.createdAt),
});

export const taskView = (t: TaskRow, to: Audience) => ({
  id: t.id,
  kind: t.kind,
  state: t.state,
  attempt: t.attempt,
  tenantId: t.tenantId,
  instanceId: t.instanceId,
  backupId: t.backupId,
  agentId: t.agentId,
  priority: t.priority,
  jobId: jobIdOf(t),
  progress: {
    percent: t.percent,
    bytesDone: t.bytesDone,
    bytesTotal: t.bytesTotal,
    etaSeconds: t.etaSeconds,
    message: t.progressMessage === null ? null : to.text(t.progressMessage),
  },
  error: t.errorCode ? { code: t.errorCode, message: to.text(t.errorMessage ?? '') } : null,
  output: t.output ? to.json(JSON.parse(t.output) as unknown) : null,
  cancelRequested: t.cancelRequested === 1,
  createdAt: iso(t.createdAt),
  dispatchedAt: isoOrNull(t.dispatchedAt),
  startedAt: isoOrNull(t.startedAt),
  endedAt: isoOrNull(t.endedAt),
});

export const progressView = (p: Selectable<TaskProgressRow>, to: Audience) => ({
  attempt: p.attempt,
  percent: p.percent,
  bytesDone: p.bytesDone,
  bytesTotal: p.bytesTotal,
  message: p.message === null ? null : to.text(p.message),
  at: iso(p.at),
});

/** A task's latest progress as a live stream sends it (`task.progress`). */
export const liveProgressView = (p: LiveProgress, to: Audience) => ({
  taskId: p.taskId,
  tenantId: p.tenantId,
  percent: p.percent,
  bytesDone: p.bytesDone,
  bytesTotal: p.bytesTotal,
  etaSeconds: etaSeconds(p.startedAt, p.at, p.percent),
  message: p.message === null ? null : to.text(p.message),
  at: iso(p.at),
});

export const backupView = (b: BackupRow) => ({
  id: b.id,
  tenantId: b.tenantId,
  instanceId: b.instanceId,
  offeringId: b.offeringId,
  taskId: b.taskId,
  name: b.name,
  mode: b.mode,
  createdAt: iso(b.createdAt),
  recordedAt: iso(b.recordedAt),
  sizeBytes: b.sizeBytes,
  addedBytes: b.addedBytes,
  externalId: b.externalId,
  parentId: b.parentId,
  expiresAt: isoOrNull(b.expiresAt),
  deleteTaskId: b.deleteTaskId,
  vanishedAt: isoOrNull(b.vanishedAt),
});

export const driftView = (providerId: string, d: StoredDrift) => ({
  providerId,
  taskId: d.taskId,
  syncedAt: iso(d.syncedAt),
  counts: d.counts,
  adopted: d.adopted,
  vanished: d.vanished,
  expired: d.expired,
  orphaned: d.orphaned,
  removed: d.removed,
  held: d.held ? { ...d.held, since: iso(d.held.since) } : null,
  noRepository: d.noRepository ?? null,
  truncated: d.truncated,
});

export const eventView = (e: Selectable<EventRow>, to: Audience) => ({
  id: String(e.id),
  tenantId: e.tenantId,
  type: e.type,
  at: iso(e.at),
  message: to.text(e.message),
  taskId: e.taskId,
  instanceId: e.instanceId,
  jobId: e.jobId,
  agentId: e.agentId,
  data: e.data ? eventData(JSON.parse(e.data) as unknown, to) : null,
});

/** A maintenance event names the token that set the window: only for the SP's eyes. */
function eventData(data: unknown, to: Audience): unknown {
  if (to.spAdmin) return data;
  const shown = to.json(data);
  return typeof shown === 'object' && shown !== null && 'setBy' in shown ? { ...shown, setBy: null } : shown;
}

export const maintenanceView = (m: MaintenanceState, to: Audience) => ({
  ...scopeFields(m.scope),
  enabled: m.enabled,
  message: m.message,
  runningBackups: m.runningBackups,
  runningOther: m.runningOther,
  ready: m.ready,
  setBy: to.spAdmin ? m.setBy : null,
  setAt: isoOrNull(m.setAt),
  source: m.source,
});
