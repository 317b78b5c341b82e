import { z } from '@hono/zod-openapi';
import { ROLES } from '../../../domain/access.js';
import { QUOTA_NAMES, QUOTAS, type QuotaName } from '../../../domain/quotas.js';
import { IdParam, Name, page, Time } from '../../schemas.js';

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
