import { z } from '@hono/zod-openapi';
import { ROLES } from '../domain/access.js';
import { isWellFormed, JSON_MAX_BYTES, JSON_MAX_DEPTH, jsonProblem } from '../domain/json-limits.js';
import { MAX_TENANT_ROOTS, normalizeRoot, TENANT_LOCATORS } from '../domain/locator-claims.js';
import { SCHEDULE_OWNERS, SCHEDULE_STATES } from '../domain/provider-schedule.js';
import { QUOTA_NAMES, QUOTAS, type QuotaName } from '../domain/quotas.js';
import { isKnownTimezone, USER_SCHEDULE_FLOOR_S } from '../domain/schedule.js';
import {
  DEFAULT_MAINTENANCE_MESSAGE,
  MAX_MAINTENANCE_MESSAGE_CHARS,
  maintenanceMessage,
} from '../domain/maintenance.js';
import { ID_PATTERN, NAME_MAX_CHARS, nameProblem, normaliseName, textProblem } from '../domain/names.js';
import { TASK_KINDS, TASK_STATES } from '../domain/task.js';

/*
 * One schema per body: the routes validate with it and /openapi.json documents it. The views in
 * views.ts are typed against the response schemas, so the documentation cannot drift.
 */

// --- shared pieces ---

/** Our own id format, so garbage in a body is a 400 without touching the store. */
export const Id = z.string().regex(ID_PATTERN, 'not a valid id').openapi({ example: 'tsk_01m8751zesr5rhnfh0ab67my7c' });
export const Zone = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'zone names are lowercase letters, digits and dashes (up to 63)')
  .openapi({ example: 'zone-a' });
/** A name: trimmed and NFC-normalised, then compared byte for byte on every backend. */
export const Name = z
  .string()
  .overwrite(normaliseName)
  .superRefine((s, ctx) => {
    const problem = nameProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .openapi({
    minLength: 1,
    maxLength: NAME_MAX_CHARS,
    description: `NFC; 1-${NAME_MAX_CHARS} characters; no control characters; not only invisible ones`,
  });
/** Free text of at most `max` characters (code points, as MySQL counts them), never cut. */
const Text = (max: number, { required = false, trim = false } = {}) =>
  z
    .string()
    .overwrite((s) => (trim ? s.trim() : s))
    .superRefine((s, ctx) => {
      const problem = required && s.length === 0 ? 'must not be empty' : textProblem(s, max);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .openapi({ maxLength: max, ...(required ? { minLength: 1 } : {}) });

/**
 * The one schema for client-supplied free-form JSON (locators, provider config and credentials):
 * bounded depth and size, no prototype keys. It checks the value as parsed, before any copy that
 * would silently drop a `__proto__` key.
 */
function freeJson<T>(what: 'object' | 'value', description: string) {
  // z.custom keeps the value as parsed (z.record would copy it and lose `__proto__`).
  return z
    .custom<T>(() => true)
    .superRefine((v, ctx) => {
      if (v === undefined) return void ctx.addIssue({ code: 'custom', message: 'is required' });
      if (v === null) return void ctx.addIssue({ code: 'custom', message: 'must not be null' });
      if (what === 'object' && (typeof v !== 'object' || Array.isArray(v))) {
        return void ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
      }
      const problem = jsonProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path });
    })
    .openapi({
      type: what === 'object' ? 'object' : ['object', 'array', 'string', 'number', 'boolean'],
      description: `${description} (at most ${JSON_MAX_BYTES} bytes as UTF-8 JSON, nested at most ${JSON_MAX_DEPTH} deep; no __proto__, constructor or prototype keys)`,
    });
}
const FreeObject = (description: string) => freeJson<Record<string, unknown>>('object', description);
const Time = z.string().openapi({ format: 'date-time', example: '2026-11-24T16:08:38.617Z' });
const PluginName = z
  .string()
  .regex(/^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/, 'must be an npm package name, e.g. @cairn/plugin-dummy')
  .max(214)
  .openapi({ example: '@cairn/plugin-dummy' });
const Cron = z
  .string()
  .trim()
  .max(200)
  .refine(isWellFormed, 'holds an unpaired UTF-16 surrogate (not valid Unicode)')
  .regex(/^(\S+\s+){4,5}\S+$/, 'must be a cron expression with 5 or 6 fields')
  .openapi({ example: '0 2 * * *' });

/** Path parameters are plain strings here: a malformed id is answered 404 like an unknown one. */
export const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });
export const ZoneParam = z.object({ zone: z.string().openapi({ param: { name: 'zone', in: 'path' } }) });
export const ZoneIdParams = ZoneParam.extend({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });

/**
 * A whole number in a query string, `min` to `max`, spelt in plain decimal digits only: no sign,
 * spaces, leading zeros, fraction, exponent or hex. What `Number()` would also take (`0x10`,
 * ` 7`, `1e1`) is refused, so a number has one spelling and a typo is never read as another value.
 */
export function decimal(min: number, max: number) {
  return z
    .string()
    .regex(/^(0|[1-9][0-9]*)$/, 'must be a whole number in plain decimal digits (no sign, spaces or leading zeros)')
    .transform(Number)
    .pipe(z.number().min(min).max(max))
    .openapi({ type: 'integer', minimum: min, maximum: max });
}

export const PageQuery = z
  .object({
    limit: decimal(1, 500)
      .default(50)
      .openapi({ description: 'items per page, 1-500 in plain decimal digits (default 50)' }),
    cursor: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .openapi({ description: 'the nextCursor of the previous page of this same list; nothing else' }),
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
    taskId: z
      .string()
      .optional()
      .openapi({ description: '`maintenance`: the failed task recorded for the refused backup' }),
    runId: z.string().optional().openapi({ description: '`maintenance`: the job run whose instances went to ERROR' }),
  })
  .openapi('Problem');

const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

// --- tenants and tokens ---

export const TenantCreate = z.object({ name: Name }).strict().openapi('TenantCreate');
export const Tenant = z.object({ id: z.string(), name: z.string(), createdAt: Time }).openapi('Tenant');
export const TenantPage = page(Tenant).openapi('TenantPage');
const quotaShape = <T extends z.ZodType>(of: (name: QuotaName) => T) =>
  Object.fromEntries(QUOTA_NAMES.map((name) => [name, of(name)])) as Record<QuotaName, T>;
export const QuotaLimits = z
  .object(
    quotaShape((name) =>
      z
        .number()
        .int()
        .min(0)
        .max(QUOTAS[name].ceiling)
        .nullable()
        .optional()
        .openapi({ description: `${QUOTAS[name].counts}: 0-${QUOTAS[name].ceiling}, null for the default` }),
    ),
  )
  .strict()
  .openapi('QuotaLimits', { description: 'the limits to set; a quota left out keeps its limit' });
const QuotaView = z.object({
  limit: z.number().int(),
  used: z
    .number()
    .int()
    .openapi({ description: 'for a per-job (per-offering) quota: the most any one job (offering) uses' }),
  default: z.number().int(),
  usage: z
    .array(z.object({ offeringId: z.string(), used: z.number().int() }))
    .optional()
    .openapi({
      description:
        'per-offering quotas only: the usage in each offering the tenant has restore points, backups or instances in',
    }),
});
export const Quotas = z.object(quotaShape(() => QuotaView)).openapi('Quotas');
export const TokenCreate = z
  .object({ role: z.enum(ROLES), name: Name })
  .strict()
  .openapi('TokenCreate');
export const Token = z
  .object({ id: z.string(), tenantId: z.string(), role: z.enum(ROLES), name: z.string(), token: z.string() })
  .openapi('Token');
export const TokenInfo = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    role: z.enum(ROLES),
    name: z.string(),
    source: z.enum(['config', 'api']).openapi({
      description: '`config`: the CAIRN_ADMIN_TOKEN of the control plane; `api`: issued through the API',
    }),
    createdAt: Time,
  })
  .openapi('TokenInfo');
export const TokenPage = page(TokenInfo).openapi('TokenPage');
export const TokenParams = IdParam.extend({
  tokenId: z.string().openapi({ param: { name: 'tokenId', in: 'path' } }),
});

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
  .object({ token: z.string().min(1).max(200), name: Name.optional(), hostname: Text(255).optional() })
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
    state: z.string().openapi({
      example: 'connected',
      description:
        '`connected`, `disconnected`, or `draining`: shutting down, finishing its running tasks and offered no new ones',
    }),
    slots: z.number().int(),
    plugins: z.array(PluginInfo),
    runningTasks: z.number().int(),
    maintenance: z.object({ enabled: z.boolean(), message: z.string(), source: z.enum(['api', 'agent']) }).openapi({
      description:
        'the agent’s own maintenance: set through the API (`source: api`, PUT /v1/agents/{id}/maintenance) or by `cairn-agent drain` on its host (`source: agent`)',
    }),
    agentVersion: z.string(),
    lastSeenAt: Time.nullable(),
    createdAt: Time,
    credential: z
      .object({
        rotation: z.enum(['none', 'pending']).openapi({
          description: '`pending`: a new credential waits for the agent to connect and authenticate with it',
        }),
        requestedAt: Time.nullable(),
        rotatedAt: Time.nullable().openapi({ description: 'when the agent last switched to a rotated credential' }),
      })
      .openapi({ description: 'the state of the agent credential (never the credential itself)' }),
  })
  .openapi('Agent');
export const AgentPage = page(Agent).openapi('AgentPage');
export const ZoneInfo = z
  .object({
    zone: z.string(),
    agentStates: z
      .object({ connected: z.number().int(), disconnected: z.number().int(), draining: z.number().int() })
      .openapi({ description: 'how many of the zone’s agents are in each state (see Agent `state`)' }),
    agents: z.array(Agent).optional().openapi({ description: 'the zone’s agents (shown to the sp-admin only)' }),
  })
  .openapi('Zone');
export const ZonePage = page(ZoneInfo).openapi('ZonePage');
export const ZonePlugins = z
  .object({
    items: z.array(
      PluginInfo.extend({
        zone: z.string(),
        agents: z
          .number()
          .int()
          .optional()
          .openapi({ description: 'live agents of the zone that run it (shown to the sp-admin only)' }),
      }),
    ),
  })
  .openapi('ZonePlugins');

// --- provider connections ---

const TenantLocatorsField = z.enum(TENANT_LOCATORS).openapi({
  description:
    'who may set the locators used through this connection and restore to other paths: sp-only (default: sp-admins), granted-roots (tenants too, for host paths below the roots granted to each tenant: PUT …/tenant-roots/{tenantId}), any (tenants name any locator: for providers whose locators name nothing of the SP, such as the dummy)',
});
export const ProviderCreate = z
  .object({
    name: Name,
    plugin: PluginName,
    endpoint: Text(2000).nullable().optional(),
    config: FreeObject('plugin-specific settings').optional(),
    credentials: FreeObject('write-only; never returned').nullable().optional(),
    tenantLocators: TenantLocatorsField.optional(),
  })
  .strict()
  .openapi('ProviderCreate');
export const ProviderPatch = z
  .object({
    name: Name.optional(),
    endpoint: Text(2000).nullable().optional(),
    config: FreeObject('plugin-specific settings').optional(),
    credentials: FreeObject('write-only; never returned').nullable().optional(),
    tenantLocators: TenantLocatorsField.optional(),
    repositoryIdentity: z.null().optional().openapi({
      description:
        'only null: forgets the recorded identity of the repository (after it was moved or replaced on purpose); the next task through the connection records the one it finds',
    }),
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
    tenantLocators: z.enum(TENANT_LOCATORS),
    repositoryIdentity: z.string().nullable().openapi({
      description:
        "the identity of the repository the connection reached (restic's repository id), recorded at its first contact; every task fails REPOSITORY_CHANGED on another repository. Null until recorded",
    }),
    createdAt: Time,
    updatedAt: Time,
  })
  .openapi('Provider');
export const ProviderCreated = Provider.extend({
  warnings: z
    .array(
      z.object({
        code: z.enum(['no_agent_in_zone', 'plugin_not_in_zone']),
        message: z.string(),
      }),
    )
    .openapi({
      description:
        'what the connection cannot do yet (empty when an agent of the zone runs its plugin): `no_agent_in_zone`, `plugin_not_in_zone`. Its tasks, its sync among them, wait in the queue until such an agent connects',
    }),
}).openapi('ProviderCreated');
const GrantedRoot = Text(4096, { required: true }).superRefine((s, ctx) => {
  const r = normalizeRoot(s);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
});
export const TenantRootsPut = z
  .object({
    roots: z
      .array(GrantedRoot)
      .max(MAX_TENANT_ROOTS)
      .openapi({
        description: `absolute directories on the agents' hosts (at most ${MAX_TENANT_ROOTS}); an empty list withdraws the grant`,
        example: ['/srv/tenants/acme'],
      }),
  })
  .strict()
  .openapi('TenantRootsPut');
export const TenantRoots = z
  .object({ providerId: z.string(), tenantId: z.string(), roots: z.array(z.string()) })
  .openapi('TenantRoots');
export const ProviderTenantParams = z.object({ zone: z.string(), id: z.string(), tenantId: z.string() });
export const ProviderPage = page(Provider).openapi('ProviderPage');
export const OfferingsWait = z.object({ waitMs: decimal(0, 120_000).default(30_000) }).strict();
export const ProviderOfferings = z
  .object({
    items: z.array(z.object({ externalId: z.string(), name: z.string(), description: z.string().optional() })),
    taskId: z.string(),
  })
  .openapi('ProviderOfferings');

export const PreflightBody = z
  .object({
    locator: freeJson<unknown>(
      'value',
      'an instance locator to check too, as the plugin takes it; without, only the connection is checked',
    ).optional(),
    initialise: z.boolean().optional().openapi({
      description:
        'true: a repository that does not exist yet is created (and its identity recorded); no other operation ever creates one',
    }),
  })
  .strict()
  .openapi('PreflightBody');
export const PreflightCheck = z
  .object({
    name: z.string().openapi({ example: 'store-writable' }),
    ok: z.boolean(),
    message: z.string().openapi({ description: 'what the plugin found' }),
    advice: z.string().optional().openapi({ description: 'what to do about a failed check' }),
  })
  .openapi('PreflightCheck');

const Ids = (what: string) => z.array(z.string()).openapi({ description: what });
export const DriftReport = z
  .object({
    providerId: z.string(),
    taskId: z.string().openapi({ description: 'the sync task this report is of' }),
    syncedAt: Time,
    counts: z.object({
      known: z.number().int(),
      adopted: z.number().int(),
      vanished: z.number().int(),
      expired: z.number().int(),
      orphaned: z.number().int(),
      removed: z.number().int(),
      deferred: z.number().int(),
    }),
    adopted: Ids('backup ids of the records this sync created'),
    vanished: Ids('backup ids of records whose restore point the provider no longer lists'),
    expired: Ids('backup ids this sync queued a delete-backup task for (keep-last, expiry)'),
    orphaned: Ids('external ids of listed points no instance of the provider owns'),
    removed: Ids('backup ids removed: a delete was asked for and the provider no longer lists them'),
    held: z
      .object({
        vanishing: z.number().int().openapi({ description: 'how many records this sync would have marked vanished' }),
        of: z
          .number()
          .int()
          .openapi({ description: "the provider's live records (not marked vanished, no delete asked)" }),
        since: Time.openapi({ description: "when the provider's syncs began to be held" }),
        confirm: z.string().openapi({ description: 'the request that marks them vanished anyway' }),
        ids: Ids('backup ids this sync would have marked vanished'),
      })
      .nullable()
      .openapi({
        description:
          'null unless the sync would have marked more than CAIRN_SYNC_VANISH_SHARE of the live records vanished at once (and more than one): then it marked none of them, and applied everything else',
      }),
    noRepository: z
      .object({
        message: z.string().openapi({ description: 'why nothing was listed, and what to do' }),
        initialise: z.string().openapi({ description: 'the request that creates the repository' }),
      })
      .nullable()
      .openapi({
        description:
          'null unless the plugin found no repository and the connection never reached one (no repository identity, no restore points): the sync listed nothing and succeeded',
      }),
    truncated: z.boolean().openapi({ description: 'some list holds only its first 1,000 ids (the counts are whole)' }),
  })
  .openapi('DriftReport');

// --- offerings ---

/** An IANA time zone name this control plane knows (e.g. Europe/Berlin, UTC). */
const Timezone = z
  .string()
  .max(100)
  .refine(isKnownTimezone, 'unknown IANA time zone')
  .openapi({ example: 'Europe/Berlin' });

const Sla = z
  .object({
    cron: Cron,
    timezone: Timezone.optional().openapi({ description: 'IANA time zone of the cron expression; default UTC' }),
    keepLast: z.number().int().min(1).max(10_000),
    rpoMinutes: z.number().int().min(1).optional(),
  })
  .strict();
const MinUserScheduleInterval = z
  .number()
  .int()
  .min(USER_SCHEDULE_FLOOR_S.min)
  .max(USER_SCHEDULE_FLOOR_S.max)
  .openapi({
    description: `The fewest seconds between two fires of a tenant's schedule (user or job schedule) of this offering's instances; default ${USER_SCHEDULE_FLOOR_S.default}. Checked when a schedule is set or changed; SLA schedules are not floored.`,
    example: USER_SCHEDULE_FLOOR_S.default,
  });
export const OfferingCreate = z
  .object({
    name: Name,
    description: Text(2000).optional(),
    zone: Zone,
    providerId: Id,
    externalId: Text(255, { required: true }).nullable().optional(),
    allowAdhoc: z.boolean(),
    allowUserSchedules: z.boolean(),
    minUserScheduleIntervalS: MinUserScheduleInterval.optional(),
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
    minUserScheduleIntervalS: z.number().int(),
    sla: z.unknown(),
    createdAt: Time,
  })
  .openapi('Offering');
export const OfferingPage = page(Offering).openapi('OfferingPage');
export const OfferingPatch = z
  .object({
    name: Name.optional(),
    description: Text(2000).optional(),
    allowAdhoc: z.boolean().optional(),
    allowUserSchedules: z.boolean().optional(),
    minUserScheduleIntervalS: MinUserScheduleInterval.optional(),
    sla: Sla.nullable().optional(),
  })
  .strict()
  .openapi('OfferingPatch');

// --- user schedules ---

export const ScheduleBody = z
  .object({
    cron: Cron,
    timezone: Timezone,
    keepLast: z.number().int().min(1).max(10_000),
  })
  .strict()
  .openapi('ScheduleBody');
export const Schedule = z
  .object({
    instanceId: z.string(),
    cron: z.string(),
    timezone: z.string(),
    keepLast: z.number().int(),
    nextRunAt: Time.nullable(),
  })
  .openapi('Schedule');
export const GrantCreate = z.object({ tenantId: Id }).strict().openapi('GrantCreate');
export const Grant = z.object({ offeringId: z.string(), tenantId: z.string() }).openapi('Grant');

// --- instances ---

export const InstanceCreate = z
  .object({
    name: Name,
    zone: Zone,
    locator: freeJson<unknown>('value', 'what the plugin needs to find the protected resource; any JSON but null'),
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
    locatorSetBy: z.enum(['sp', 'tenant']).openapi({
      description:
        'who set the locator: an sp-admin (sp), or the tenant (tenant), whose claim the provider connection must grant (tenantLocators)',
    }),
    agentId: z.string().nullable(),
    offeringId: z.string().nullable(),
    schedule: z
      .object({
        owner: z.enum(SCHEDULE_OWNERS).nullable().openapi({
          description:
            'who fires the SLA backups: provider (the backup system, on its own clock), cairn (the provider left it to Cairn), null (no provider was asked: Cairn)',
        }),
        state: z.enum(SCHEDULE_STATES).openapi({
          description:
            'configuring: the assignment waits for the provider; reconfiguring: an SLA change does; deconfiguring: the provider drops the schedule; configured; failed: see the task',
        }),
        taskId: z
          .string()
          .openapi({ description: 'the configure-schedule or deconfigure-schedule task of that state' }),
      })
      .nullable()
      .openapi({ description: 'the provider-side schedule of the instance; null: none (Cairn fires any SLA)' }),
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
    jobId: z.string().nullable().openapi({ description: 'the backup job whose run made this backup task' }),
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
export const TaskList = z.object({ items: z.array(Task) }).openapi('TaskList');
export const PreflightAnswer = z
  .object({
    ok: z.boolean().openapi({ description: 'every check passed' }),
    checks: z.array(PreflightCheck).openapi({ description: 'at most 50, in the order the plugin ran them' }),
    task: Task,
  })
  .openapi('PreflightAnswer');
export const PreflightPending = z
  .object({ task: Task.openapi({ description: 'still running: its output carries the checks once it ends' }) })
  .openapi('PreflightPending');
export const InstanceAssignment = z
  .object({
    instance: Instance,
    task: Task.openapi({ description: 'the configure-schedule task the assignment waits for' }),
  })
  .openapi('InstanceAssignment');
/** A route that takes no query parameters refuses any, rather than ignoring a misspelt one. */
export const NoQuery = z.object({}).strict();
export const RemoveOfferingQuery = z
  .object({
    force: z
      .enum(['true', 'false'])
      .optional()
      .openapi({ description: 'true: also delete every restore point of the instance through the provider' }),
  })
  .strict();
export const SyncQuery = z
  .object({
    confirm: z.enum(['true', 'false']).optional().openapi({
      description:
        'true: this sync marks the restore points the provider no longer lists vanished even when they are more than CAIRN_SYNC_VANISH_SHARE of its live ones (a held sync, see the drift report)',
    }),
  })
  .strict();
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
    createdAt: Time.openapi({
      description: 'when the restore point was made (the provider’s own time for one a sync found)',
    }),
    recordedAt: Time.openapi({
      description:
        'when the control plane recorded it, what keep-last ranks by: never behind an earlier backup of the instance, never ahead of the time of recording for a point a sync found',
    }),
    sizeBytes: z.number(),
    addedBytes: z.number().nullable(),
    externalId: z.string(),
    parentId: z.string().nullable(),
    expiresAt: Time.nullable(),
    deleteTaskId: z
      .string()
      .nullable()
      .openapi({ description: 'the delete-backup task last asked to remove it (pending or ended); null: none' }),
    vanishedAt: Time.nullable().openapi({
      description: 'when a provider sync found the restore point gone (it cannot be restored); null: not vanished',
    }),
  })
  .openapi('Backup');
export const BackupPage = page(Backup).openapi('BackupPage');
/** An absolute path on the agent's host (POSIX, or a Windows drive path). */
const HostPath = Text(4096, { required: true })
  .refine((s) => /^(\/|[A-Za-z]:[\\/])/.test(s), 'must be an absolute path on the agent host')
  .openapi({ example: '/srv/restore' });
export const RestoreStart = z
  .object({
    targetPath: HostPath.optional().openapi({
      description: 'restore there instead of in place (how the path is used is the plugin’s: docs/plugins.md)',
    }),
  })
  .strict()
  .openapi('RestoreStart');
export const RestoreVolume = z
  .object({
    volume: Text(255, { required: true, trim: true }).openapi({ example: 'disk-1' }),
    targetInstanceId: Id,
  })
  .strict()
  .openapi('RestoreVolume');
export const EventQuery = PageQuery.extend({
  after: decimal(0, Number.MAX_SAFE_INTEGER)
    .optional()
    .openapi({ description: 'start after this event id (as the stream does); instead of cursor' }),
}).strict();
// Without `after` (or Last-Event-ID) a stream starts at the end of the log: live events only.
export const EventStreamQuery = z
  .object({
    after: decimal(0, Number.MAX_SAFE_INTEGER).optional(),
    taskId: Id.optional().openapi({ description: 'only this task’s events and progress' }),
    jobId: Id.optional().openapi({ description: 'only the events and progress of this backup job’s runs and tasks' }),
    type: z
      .string()
      .regex(/^[a-z0-9._-]{1,64}$/, 'a type prefix: lowercase letters, digits, dots, dashes and underscores (up to 64)')
      .optional()
      .openapi({ description: 'only events whose type starts with this (e.g. `task.`)' }),
  })
  .strict();
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
    nextCursor: z.string().nullable(),
  })
  .openapi('Usage');

// --- backup jobs ---

const JobInstanceIds = z
  .array(Id)
  .min(1)
  .max(QUOTAS.membersPerJob.ceiling)
  .superRefine((ids, ctx) => {
    const seen = new Map<string, number>();
    ids.forEach((id, i) => {
      const first = seen.get(id);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i], message: `repeats instanceIds.${first}` });
      else seen.set(id, i);
    });
  })
  .openapi({ description: 'the instances in backup order, no duplicates; 1 up to the membersPerJob quota' });
const JobMode = z.enum(['FULL', 'INCREMENT']);
const FsFreeze = z.enum(['NONE', 'AGENT', 'SUSPEND']);
const Execution = z.enum(['SEQUENTIAL', 'PARALLEL']);
const JobPriority = z
  .number()
  .int()
  .min(0)
  .max(99)
  .openapi({ description: "0-49 for a tenant; 50-99 is the service provider's band (403 for a tenant)" });
const ScheduleEnd = z
  .union([
    z.object({ afterRuns: z.number().int().min(1).max(1_000_000) }).strict(),
    z.object({ at: z.string().datetime({ offset: true }) }).strict(),
  ])
  .nullable()
  .openapi({ description: 'ends after N runs it started, or at a time; null: never' });
export const JobScheduleBody = z
  .object({ cron: Cron, timezone: Timezone.optional(), end: ScheduleEnd.optional() })
  .strict()
  .openapi('JobScheduleBody');
export const JobSchedulePatch = z
  .object({ cron: Cron.optional(), timezone: Timezone.optional(), end: ScheduleEnd.optional() })
  .strict()
  .openapi('JobSchedulePatch');
export const JobCreate = z
  .object({
    name: Name,
    instanceIds: JobInstanceIds,
    mode: JobMode,
    reset: z.boolean().optional(),
    keepLast: z.number().int().min(1).max(10_000).nullable().optional(),
    fsFreeze: FsFreeze.optional(),
    priority: JobPriority.optional(),
    execution: Execution,
    schedules: z
      .array(JobScheduleBody)
      .max(QUOTAS.schedulesPerJob.ceiling)
      .optional()
      .openapi({ description: 'at most the schedulesPerJob quota' }),
    tenantId: Id.optional().openapi({ description: 'only for an sp-admin acting for a tenant' }),
  })
  .strict()
  .openapi('BackupJobCreate');
export const JobPatch = z
  .object({
    name: Name.optional(),
    instanceIds: JobInstanceIds.optional(),
    mode: JobMode.optional(),
    reset: z.boolean().optional(),
    keepLast: z.number().int().min(1).max(10_000).nullable().optional(),
    fsFreeze: FsFreeze.optional(),
    priority: JobPriority.optional(),
    execution: Execution.optional(),
    tenantId: Id.optional().openapi({ description: "sp-admin only: the job's new owning tenant" }),
  })
  .strict()
  .openapi('BackupJobPatch');
const JobScheduleEndView = z.union([z.object({ afterRuns: z.number().int() }), z.object({ at: Time })]).nullable();
export const JobSchedule = z
  .object({
    id: z.string(),
    cron: z.string(),
    timezone: z.string(),
    end: JobScheduleEndView,
    runs: z.number().int(),
    nextRunAt: Time.nullable(),
  })
  .openapi('BackupJobSchedule');
const JobSetsView = z.object({
  outdated: z.array(z.string()),
  ongoing: z.array(z.string()),
  updated: z.array(z.string()),
  error: z.array(z.string()),
});
export const Job = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    instanceIds: z.array(z.string()),
    mode: JobMode,
    reset: z.boolean(),
    keepLast: z.number().int().nullable(),
    fsFreeze: FsFreeze,
    priority: z.number().int(),
    execution: Execution,
    locked: z.boolean(),
    schedules: z.array(JobSchedule),
    sets: JobSetsView,
    lastRun: z
      .object({ id: z.string(), startedAt: Time, durationSeconds: z.number().int(), state: z.string() })
      .nullable(),
    progress: z
      .object({
        percent: z.number(),
        bytesDone: z.number(),
        bytesTotal: z.number(),
        etaSeconds: z.number().int().nullable(),
      })
      .nullable(),
  })
  .openapi('BackupJob');
export const JobPage = page(Job).openapi('BackupJobPage');
export const JobRunMember = z
  .object({
    instanceId: z.string(),
    set: z.enum(['OUTDATED', 'ONGOING', 'UPDATED', 'ERROR']),
    taskId: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  })
  .openapi('BackupJobRunMember');
export const JobRun = z
  .object({
    id: z.string(),
    trigger: z.enum(['run', 'schedule', 'retry']),
    startedAt: Time,
    endedAt: Time.nullable(),
    durationSeconds: z.number().int(),
    state: z.string(),
    memberCounts: z
      .object({
        total: z.number().int(),
        outdated: z.number().int(),
        ongoing: z.number().int(),
        updated: z.number().int(),
        error: z.number().int(),
      })
      .openapi({ description: "the run's members by set" }),
    members: z
      .array(JobRunMember)
      .openapi({ description: 'the first members in the job order; page them all at …/runs/{runId}/members' }),
  })
  .openapi('BackupJobRun');
export const JobRunPage = page(JobRun).openapi('BackupJobRunPage');
export const JobRunMemberPage = page(JobRunMember).openapi('BackupJobRunMemberPage');
export const JobRunParams = IdParam.extend({
  runId: z.string().openapi({ param: { name: 'runId', in: 'path' } }),
});
export const JobScheduleParams = IdParam.extend({
  sid: z.string().openapi({ param: { name: 'sid', in: 'path' } }),
});

// --- maintenance ---

export const MaintenancePut = z
  .object({
    enabled: z.boolean(),
    message: z
      .string()
      .superRefine((m, ctx) => {
        const checked = maintenanceMessage(m);
        if (!checked.ok) ctx.addIssue({ code: 'custom', message: checked.problem });
      })
      .optional()
      .openapi({
        maxLength: MAX_MAINTENANCE_MESSAGE_CHARS,
        description: `what tenants are told (trimmed; 1-${MAX_MAINTENANCE_MESSAGE_CHARS} characters); default: "${DEFAULT_MAINTENANCE_MESSAGE}"`,
      }),
  })
  .strict()
  .openapi('MaintenancePut');
export const MaintenanceQuery = z
  .object({
    wait: z
      .enum(['ready'])
      .optional()
      .openapi({ description: 'wait until the scope is ready (or the timeout passes)' }),
    timeoutS: decimal(1, 300)
      .optional()
      .openapi({ description: 'how long `wait=ready` waits, 1-300 seconds (default 30)' }),
  })
  .strict()
  .refine((q) => q.timeoutS === undefined || q.wait !== undefined, {
    message: 'timeoutS needs wait=ready',
    path: ['timeoutS'],
  });
export const Maintenance = z
  .object({
    scope: z.enum(['global', 'zone', 'agent']),
    zone: z.string().optional(),
    agentId: z.string().optional(),
    enabled: z.boolean(),
    message: z.string(),
    runningBackups: z
      .number()
      .int()
      .openapi({ description: 'backup tasks held by agents (dispatched or running) in the scope' }),
    runningOther: z.number().int().openapi({
      description:
        'deletes, prunes and provider-schedule changes held by agents in the scope (they reach the backup system, so maintenance holds them back too)',
    }),
    ready: z.boolean().openapi({ description: 'in maintenance and none of the work it holds back running there' }),
    setBy: z.object({ tokenId: z.string(), role: z.string() }).nullable(),
    setAt: Time.nullable(),
    source: z.enum(['api', 'agent']).openapi({
      description: '`agent`: an agent scope in maintenance because `cairn-agent drain` was run on its host',
    }),
  })
  .openapi('Maintenance');
