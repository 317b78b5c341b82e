import { z } from '@hono/zod-openapi';
import { MAX_TENANT_ROOTS, normalizeRoot, TENANT_LOCATORS } from '../../../domain/locator-claims.js';
import { decimal, FreeObject, freeJson, Name, page, Text, Time, ZoneParam } from '../../schemas.js';
import { Task } from '../tasks/schemas.js';

const PluginName = z
  .string()
  .regex(/^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/, 'must be an npm package name, e.g. @cairn/plugin-dummy')
  .max(214)
  .openapi({ example: '@cairn/plugin-dummy' });
export const ZoneIdParams = ZoneParam.extend({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });
const TenantLocatorsField = z.enum(TENANT_LOCATORS).openapi({
  description:
    'who may set the locators used through this connection and restore to other paths: sp-only (default: sp-admins), granted-roots (tenants too, for host paths below the roots granted to each tenant: PUT …/tenant-roots/{tenantId}), any (tenants name any locator: for providers whose locators name nothing of the SP, such as the dummy)',
});
const ExportToField = z.string().max(64).openapi({
  description:
    'the id of another provider connection of the zone that this one exports its backups into (the CSI provider exports into a restic connection for offerings that ask for it); the named connection must have no exportTo of its own, and while one names it, it cannot be deleted',
  example: 'prv_01J9Z3…',
});
export const ProviderCreate = z
  .object({
    name: Name,
    plugin: PluginName,
    endpoint: Text(2000).nullable().optional(),
    config: FreeObject('plugin-specific settings').optional(),
    credentials: FreeObject('write-only; never returned').nullable().optional(),
    tenantLocators: TenantLocatorsField.optional(),
    exportTo: ExportToField.optional(),
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
    exportTo: ExportToField.nullable().optional().openapi({ description: 'null: exports nowhere' }),
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
    exportTo: z.string().nullable().openapi({
      description: 'the connection of the zone this one exports its backups into (its tasks carry it); null: none',
    }),
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
export const SyncQuery = z
  .object({
    confirm: z.enum(['true', 'false']).optional().openapi({
      description:
        'true: this sync marks the restore points the provider no longer lists vanished even when they are more than CAIRN_SYNC_VANISH_SHARE of its live ones (a held sync, see the drift report)',
    }),
  })
  .strict();
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
