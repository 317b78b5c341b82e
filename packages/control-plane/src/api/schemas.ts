import { z } from '@hono/zod-openapi';
import { ROLES } from '../domain/access.js';
import { TASK_KINDS, TASK_STATES } from '../domain/task.js';

/*
 * One schema per body: the routes validate with it and /openapi.json documents it. The views in
 * views.ts are typed against the response schemas, so the documentation cannot drift.
 */

// --- shared pieces ---

/** Our own id format, so garbage in a body is a 400 without touching the store. */
export const Id = z
  .string()
  .regex(/^[a-z]{3}_[0-9a-z]{26}$/, 'not a valid id')
  .openapi({ example: 'tsk_01m8751zesr5rhnfh0ab67my7c' });
export const Zone = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'zone names are lowercase letters, digits and dashes (up to 63)')
  .openapi({ example: 'zone-a' });
export const Name = z.string().trim().min(1, 'must not be empty').max(200);
const Time = z.string().openapi({ format: 'date-time', example: '2026-11-24T16:08:38.617Z' });
const JsonObject = z.record(z.string(), z.unknown());
const PluginName = z
  .string()
  .regex(/^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/, 'must be an npm package name, e.g. @cairn/plugin-dummy')
  .max(214)
  .openapi({ example: '@cairn/plugin-dummy' });
const Cron = z
  .string()
  .trim()
  .regex(/^(\S+\s+){4,5}\S+$/, 'must be a cron expression with 5 or 6 fields')
  .openapi({ example: '0 2 * * *' });

/** Path parameters are plain strings here: a malformed id is answered 404 like an unknown one. */
export const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });
export const ZoneParam = z.object({ zone: z.string().openapi({ param: { name: 'zone', in: 'path' } }) });
export const ZoneIdParams = ZoneParam.extend({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });

export const PageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().min(1).optional(),
  })
  .strict();

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');

const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

// --- tenants and tokens ---

export const TenantCreate = z.object({ name: Name }).strict().openapi('TenantCreate');
export const Tenant = z.object({ id: z.string(), name: z.string(), createdAt: Time }).openapi('Tenant');
export const TenantPage = page(Tenant).openapi('TenantPage');
export const TokenCreate = z
  .object({ role: z.enum(ROLES), name: Name })
  .strict()
  .openapi('TokenCreate');
export const Token = z
  .object({ id: z.string(), tenantId: z.string(), role: z.enum(ROLES), name: z.string(), token: z.string() })
  .openapi('Token');

// --- agents ---

export const EnrollmentCreate = z
  .object({
    zone: Zone,
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 86400)
      .default(86400),
  })
  .strict()
  .openapi('EnrollmentCreate');
export const Enrollment = z.object({ token: z.string(), zone: z.string(), expiresAt: Time }).openapi('Enrollment');
export const EnrollExchange = z
  .object({ token: z.string().min(1), name: Name.optional(), hostname: z.string().max(255).optional() })
  .strict()
  .openapi('EnrollExchange');
export const AgentCredential = z
  .object({ agentId: z.string(), credential: z.string(), zone: z.string(), name: z.string() })
  .openapi('AgentCredential');
const PluginInfo = z.object({
  name: z.string(),
  version: z.string(),
  apiVersion: z.number().int(),
  capabilities: z.array(z.string()),
});
export const Agent = z
  .object({
    id: z.string(),
    name: z.string(),
    zone: z.string(),
    hostname: z.string(),
    state: z.string().openapi({ example: 'connected' }),
    slots: z.number().int(),
    plugins: z.array(PluginInfo),
    runningTasks: z.number().int(),
    maintenance: z.object({ enabled: z.boolean(), message: z.string().nullable() }),
    agentVersion: z.string(),
    lastSeenAt: Time.nullable(),
    createdAt: Time,
  })
  .openapi('Agent');
export const AgentPage = page(Agent).openapi('AgentPage');
export const ZonePlugins = z
  .object({ items: z.array(PluginInfo.extend({ zone: z.string(), agents: z.number().int() })) })
  .openapi('ZonePlugins');

// --- provider connections ---

export const ProviderCreate = z
  .object({
    name: Name,
    plugin: PluginName,
    endpoint: z.string().max(2000).nullable().optional(),
    config: JsonObject.optional(),
    credentials: JsonObject.nullable().optional().openapi({ description: 'write-only; never returned' }),
  })
  .strict()
  .openapi('ProviderCreate');
export const ProviderPatch = z
  .object({
    name: Name.optional(),
    endpoint: z.string().max(2000).nullable().optional(),
    config: JsonObject.optional(),
    credentials: JsonObject.nullable().optional(),
    plugin: z
      .unknown()
      .refine((v) => v === undefined, 'the plugin of a provider connection cannot change')
      .optional()
      .openapi({ description: 'cannot change after creation: any value is refused' }),
  })
  .strict()
  .openapi('ProviderPatch');
export const Provider = z
  .object({
    id: z.string(),
    zone: z.string(),
    name: z.string(),
    plugin: z.string(),
    endpoint: z.string().nullable(),
    config: z.unknown(),
    hasCredentials: z.boolean(),
    createdAt: Time,
    updatedAt: Time,
  })
  .openapi('Provider');
export const ProviderPage = page(Provider).openapi('ProviderPage');
export const OfferingsWait = z.object({ waitMs: z.coerce.number().int().min(0).max(120_000).default(30_000) }).strict();
export const ProviderOfferings = z
  .object({
    items: z.array(z.object({ externalId: z.string(), name: z.string(), description: z.string().optional() })),
    taskId: z.string(),
  })
  .openapi('ProviderOfferings');

// --- offerings ---

const Sla = z
  .object({
    cron: Cron,
    timezone: z.string().min(1).optional(),
    keepLast: z.number().int().min(1).max(10_000),
    rpoMinutes: z.number().int().min(1).optional(),
  })
  .strict();
export const OfferingCreate = z
  .object({
    name: Name,
    description: z.string().max(2000).optional(),
    zone: Zone,
    providerId: Id,
    externalId: z.string().min(1).max(255).nullable().optional(),
    allowAdhoc: z.boolean(),
    allowUserSchedules: z.boolean(),
    sla: Sla.nullable().optional(),
  })
  .strict()
  .openapi('OfferingCreate');
export const Offering = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    description: z.string(),
    zone: z.string(),
    providerId: z.string(),
    externalId: z.string().nullable(),
    allowAdhoc: z.boolean(),
    allowUserSchedules: z.boolean(),
    sla: z.unknown(),
    createdAt: Time,
  })
  .openapi('Offering');
export const OfferingPage = page(Offering).openapi('OfferingPage');
export const GrantCreate = z.object({ tenantId: Id }).strict().openapi('GrantCreate');
export const Grant = z.object({ offeringId: z.string(), tenantId: z.string() }).openapi('Grant');

// --- instances ---

export const InstanceCreate = z
  .object({
    name: Name,
    zone: Zone,
    locator: z
      .unknown()
      .refine((v) => v !== undefined, 'is required')
      .openapi({ description: 'what the plugin needs to find the protected resource' }),
    agentId: Id.nullable().optional(),
    tenantId: Id.optional().openapi({ description: 'only for an sp-admin acting for a tenant' }),
  })
  .strict()
  .openapi('InstanceCreate');
export const Instance = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    zone: z.string(),
    locator: z.unknown(),
    agentId: z.string().nullable(),
    offeringId: z.string().nullable(),
    createdAt: Time,
  })
  .openapi('Instance');
export const InstancePage = page(Instance).openapi('InstancePage');
export const AssignOffering = z.object({ offeringId: Id }).strict().openapi('AssignOffering');
export const BackupStart = z
  .object({ mode: z.enum(['FULL', 'INCREMENT']).default('FULL') })
  .strict()
  .openapi('BackupStart');

// --- tasks, backups, events ---

export const TaskQuery = PageQuery.extend({
  state: z.enum(TASK_STATES).optional(),
  kind: z.enum(TASK_KINDS).optional(),
  instanceId: Id.optional(),
}).strict();
export const Task = z
  .object({
    id: z.string(),
    kind: z.string(),
    state: z.string(),
    attempt: z.number().int(),
    tenantId: z.string(),
    instanceId: z.string().nullable(),
    backupId: z.string().nullable(),
    agentId: z.string().nullable(),
    priority: z.number().int(),
    progress: z.object({
      percent: z.number(),
      bytesDone: z.number(),
      bytesTotal: z.number(),
      etaSeconds: z.number().nullable(),
      message: z.string().nullable(),
    }),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    output: z.unknown(),
    cancelRequested: z.boolean(),
    createdAt: Time,
    dispatchedAt: Time.nullable(),
    startedAt: Time.nullable(),
    endedAt: Time.nullable(),
  })
  .openapi('Task');
export const TaskPage = page(Task).openapi('TaskPage');
export const Progress = z
  .object({
    attempt: z.number().int(),
    percent: z.number(),
    bytesDone: z.number(),
    bytesTotal: z.number(),
    message: z.string().nullable(),
    at: Time,
  })
  .openapi('Progress');
export const ProgressPage = page(Progress).openapi('ProgressPage');
export const BackupQuery = PageQuery.extend({ instanceId: Id.optional() }).strict();
export const Backup = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    instanceId: z.string(),
    offeringId: z.string(),
    taskId: z.string().nullable(),
    name: z.string(),
    mode: z.string(),
    createdAt: Time,
    sizeBytes: z.number(),
    addedBytes: z.number().nullable(),
    externalId: z.string(),
    parentId: z.string().nullable(),
    expiresAt: Time.nullable(),
  })
  .openapi('Backup');
export const BackupPage = page(Backup).openapi('BackupPage');
export const RestoreVolume = z
  .object({
    volume: z.string().trim().min(1, 'must not be empty').max(255).openapi({ example: 'disk-1' }),
    targetInstanceId: Id,
  })
  .strict()
  .openapi('RestoreVolume');
export const EventQuery = z
  .object({
    after: z.coerce.number().int().min(0).default(0),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();
// Without `after` (or Last-Event-ID) a stream starts at the end of the log: live events only.
export const EventStreamQuery = z.object({ after: z.coerce.number().int().min(0).optional() }).strict();
export const Event = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    type: z.string(),
    at: Time,
    message: z.string(),
    taskId: z.string().nullable(),
    instanceId: z.string().nullable(),
    jobId: z.string().nullable(),
    agentId: z.string().nullable(),
    data: z.unknown(),
  })
  .openapi('Event');
export const EventPage = page(Event).openapi('EventPage');

// --- usage ---

export const Usage = z
  .object({
    items: z.array(
      z.object({
        tenantId: z.string(),
        protectedInstances: z.number().int(),
        backups: z.number().int(),
        storedBytes: z.number(),
        protectedBytes: z.number(),
      }),
    ),
  })
  .openapi('Usage');
