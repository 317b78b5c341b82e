/** The columns each kind of object shows as a table (`-o wide` adds the wide ones). */
import { col, type Column } from './output.js';

/** Bytes as people read them: 4096 → 4.0 KiB. */
export function bytes(n: unknown): string {
  if (typeof n !== 'number') return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

export const TENANT: Column[] = [col('ID', 'id'), col('NAME', 'name'), col('CREATED', 'createdAt')];

export const TOKEN: Column[] = [
  col('ID', 'id'),
  col('TENANT', 'tenantId', { wide: true }),
  col('ROLE', 'role'),
  col('NAME', 'name'),
  col('SOURCE', 'source'),
  col('CREATED', 'createdAt'),
];

export const NEW_TOKEN: Column[] = [
  col('ID', 'id'),
  col('TENANT', 'tenantId', { wide: true }),
  col('ROLE', 'role'),
  col('NAME', 'name'),
  col('TOKEN', 'token'),
];

export const AGENT: Column[] = [
  col('ID', 'id'),
  col('NAME', 'name'),
  col('ZONE', 'zone'),
  col('STATE', 'state'),
  col('SLOTS', 'slots'),
  col('RUNNING', 'runningTasks'),
  col('MAINTENANCE', 'maintenance.enabled'),
  col('HOSTNAME', 'hostname', { wide: true }),
  col('VERSION', 'agentVersion', { wide: true }),
  col('LAST SEEN', 'lastSeenAt', { wide: true }),
  {
    header: 'PLUGINS',
    get: (r) => (Array.isArray(r['plugins']) ? r['plugins'].map((p: { name: string }) => p.name).join(',') : undefined),
    wide: true,
  },
];

export const INSTANCE: Column[] = [
  col('ID', 'id'),
  col('NAME', 'name'),
  col('TENANT', 'tenantId', { wide: true }),
  col('ZONE', 'zone'),
  col('OFFERING', 'offeringId'),
  col('AGENT', 'agentId', { wide: true }),
  col('LOCATOR', 'locator', { wide: true }),
  col('CREATED', 'createdAt'),
];

export const BACKUP: Column[] = [
  col('ID', 'id'),
  col('INSTANCE', 'instanceId'),
  col('NAME', 'name'),
  col('MODE', 'mode'),
  { header: 'SIZE', get: (r) => bytes(r['sizeBytes']) },
  col('CREATED', 'createdAt'),
  col('TASK', 'taskId', { wide: true }),
  col('PARENT', 'parentId', { wide: true }),
  col('EXTERNAL ID', 'externalId', { wide: true }),
  col('EXPIRES', 'expiresAt', { wide: true }),
];

export const TASK: Column[] = [
  col('ID', 'id'),
  col('KIND', 'kind'),
  col('STATE', 'state'),
  {
    header: 'PROGRESS',
    get: (r) => {
      const p = r['progress'] as { percent?: number } | null | undefined;
      return typeof p?.percent === 'number' ? `${Math.round(p.percent)}%` : undefined;
    },
  },
  col('INSTANCE', 'instanceId'),
  col('CREATED', 'createdAt'),
  col('AGENT', 'agentId', { wide: true }),
  col('PRIORITY', 'priority', { wide: true }),
  col('ERROR', 'error.code', { wide: true }),
  col('ENDED', 'endedAt', { wide: true }),
];

export const EVENT: Column[] = [
  col('ID', 'id'),
  col('AT', 'at'),
  col('TYPE', 'type'),
  col('MESSAGE', 'message'),
  col('TENANT', 'tenantId', { wide: true }),
  col('TASK', 'taskId', { wide: true }),
  col('INSTANCE', 'instanceId', { wide: true }),
];

export const MAINTENANCE: Column[] = [
  col('SCOPE', 'scope'),
  { header: 'TARGET', get: (r) => r['zone'] ?? r['agentId'] },
  col('ENABLED', 'enabled'),
  col('READY', 'ready'),
  col('BACKUPS', 'runningBackups'),
  col('OTHER', 'runningOther', { wide: true }),
  col('MESSAGE', 'message'),
  col('SOURCE', 'source', { wide: true }),
  col('SET AT', 'setAt', { wide: true }),
];

export const CONTEXT: Column[] = [
  { header: 'CURRENT', get: (r) => (r['current'] ? '*' : '') },
  col('NAME', 'name'),
  col('URL', 'url'),
];

export const ENROLLMENT: Column[] = [col('ZONE', 'zone'), col('EXPIRES', 'expiresAt'), col('TOKEN', 'token')];

export const PROVIDER: Column[] = [
  col('ID', 'id'),
  col('NAME', 'name'),
  col('ZONE', 'zone'),
  col('PLUGIN', 'plugin'),
  col('ENDPOINT', 'endpoint'),
  col('CREDENTIALS', 'hasCredentials', { wide: true }),
  col('TENANT LOCATORS', 'tenantLocators', { wide: true }),
  col('EXPORT TO', 'exportTo', { wide: true }),
  col('REPOSITORY', 'repositoryIdentity', { wide: true }),
  col('CONFIG', 'config', { wide: true }),
];

/** A check of a provider's preflight. */
export const CHECK: Column[] = [
  col('CHECK', 'name'),
  col('OK', 'ok'),
  col('MESSAGE', 'message'),
  col('ADVICE', 'advice'),
];

/** What a provider offers itself (`offering list-provider`). */
export const PROVIDER_OFFERING: Column[] = [
  col('EXTERNAL ID', 'externalId'),
  col('NAME', 'name'),
  col('DESCRIPTION', 'description'),
];

export const OFFERING: Column[] = [
  col('ID', 'id'),
  col('NAME', 'name'),
  col('ZONE', 'zone'),
  col('PROVIDER', 'providerId'),
  col('EXTERNAL ID', 'externalId'),
  col('AD-HOC', 'allowAdhoc'),
  col('USER SCHEDULES', 'allowUserSchedules'),
  col('SLA', 'sla.cron'),
  col('TENANT', 'tenantId', { wide: true }),
  col('MIN INTERVAL S', 'minUserScheduleIntervalS', { wide: true }),
  col('DESCRIPTION', 'description', { wide: true }),
  col('CREATED', 'createdAt', { wide: true }),
];

export const GRANT: Column[] = [col('OFFERING', 'offeringId'), col('TENANT', 'tenantId')];

/** The host roots a tenant may name on a provider connection. */
export const ROOTS: Column[] = [col('PROVIDER', 'providerId'), col('TENANT', 'tenantId'), col('ROOTS', 'roots')];

/** An instance's user schedule. */
export const SCHEDULE: Column[] = [
  col('INSTANCE', 'instanceId'),
  col('CRON', 'cron'),
  col('TIMEZONE', 'timezone'),
  col('KEEP LAST', 'keepLast'),
  col('NEXT RUN', 'nextRunAt'),
];

const count = (field: string) => (r: Record<string, unknown>) => {
  const sets = r['sets'] as Record<string, unknown[]> | undefined;
  return Array.isArray(sets?.[field]) ? sets[field].length : undefined;
};

export const JOB: Column[] = [
  col('ID', 'id'),
  col('NAME', 'name'),
  col('MODE', 'mode'),
  col('EXECUTION', 'execution'),
  col('PRIORITY', 'priority'),
  col('LOCKED', 'locked'),
  { header: 'MEMBERS', get: (r) => (Array.isArray(r['instanceIds']) ? r['instanceIds'].length : undefined) },
  col('LAST RUN', 'lastRun.state'),
  { header: 'UPDATED', get: count('updated'), wide: true },
  { header: 'ERROR', get: count('error'), wide: true },
  col('KEEP LAST', 'keepLast', { wide: true }),
  col('FS FREEZE', 'fsFreeze', { wide: true }),
  col('TENANT', 'tenantId', { wide: true }),
];

export const JOB_SCHEDULE: Column[] = [
  col('ID', 'id'),
  col('CRON', 'cron'),
  col('TIMEZONE', 'timezone'),
  col('END', 'end'),
  col('RUNS', 'runs'),
  col('NEXT RUN', 'nextRunAt'),
];

const members = (set: string) => (r: Record<string, unknown>) =>
  Array.isArray(r['members']) ? r['members'].filter((m: { set: string }) => m.set === set).length : undefined;

export const JOB_RUN: Column[] = [
  col('ID', 'id'),
  col('TRIGGER', 'trigger'),
  col('STATE', 'state'),
  { header: 'UPDATED', get: members('UPDATED') },
  { header: 'ERROR', get: members('ERROR') },
  col('STARTED', 'startedAt'),
  col('DURATION S', 'durationSeconds'),
  col('ENDED', 'endedAt', { wide: true }),
];

/** One member of a job: its instance and the set its last run left it in (`job describe`). */
export const JOB_MEMBER: Column[] = [col('#', 'position'), col('INSTANCE', 'instanceId'), col('SET', 'set')];

/** A tenant's quotas, one row each. */
export const QUOTA: Column[] = [
  col('QUOTA', 'name'),
  col('LIMIT', 'limit'),
  col('USED', 'used'),
  col('DEFAULT', 'default'),
  col('USAGE', 'usage', { wide: true }),
];
