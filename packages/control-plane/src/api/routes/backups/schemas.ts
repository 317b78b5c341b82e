import { z } from '@hono/zod-openapi';
import { Id, page, PageQuery, Text, Time } from '../../schemas.js';

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
/** A Kubernetes namespace name: an RFC 1123 label. */
const Namespace = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a Kubernetes namespace name (lowercase RFC 1123 label)')
  .openapi({ example: 'shop-restored' });
export const RestoreStart = z
  .object({
    targetPath: HostPath.optional().openapi({
      description: 'restore there instead of in place (how the path is used is the plugin’s: docs/plugins.md)',
    }),
    targetNamespace: Namespace.optional().openapi({
      description:
        'restore into this Kubernetes namespace instead of the instance’s own (CSI provider: docs/plugins.md); sp-admins only unless the connection lets tenants name locators (tenantLocators any)',
    }),
  })
  .strict()
  .refine((b) => b.targetPath === undefined || b.targetNamespace === undefined, {
    path: ['targetNamespace'],
    message: 'give targetPath or targetNamespace, not both',
  })
  .openapi('RestoreStart');
export const RestoreVolume = z
  .object({
    volume: Text(255, { required: true, trim: true }).openapi({ example: 'disk-1' }),
    targetInstanceId: Id,
  })
  .strict()
  .openapi('RestoreVolume');
