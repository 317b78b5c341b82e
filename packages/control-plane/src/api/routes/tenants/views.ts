import type { z } from '@hono/zod-openapi';
import type { Role } from '../../../domain/access.js';
import { isPerOffering, limitOf, QUOTA_NAMES, QUOTAS, type PerOfferingQuota } from '../../../domain/quotas.js';
import type { TenantQuotas } from '../../../service/tenants.js';
import type { TokenInfo } from '../../../store/tenant-repository.js';
import type { TenantRow } from '../../../store/schema.js';
import { iso } from '../../views.js';
import type { Quotas } from './schemas.js';

export const tenantView = (t: TenantRow) => ({ id: t.id, name: t.name, createdAt: iso(t.createdAt) });

export const tokenView = (t: TokenInfo) => ({
  id: t.id,
  tenantId: t.tenantId,
  role: t.role as Role,
  name: t.name,
  source: t.source === 'config' ? ('config' as const) : ('api' as const),
  createdAt: iso(t.createdAt),
});

/** A tenant's quotas as the API shows them: limit, usage and default of each (per offering where it counts so). */
export function quotasView({ overrides, used, byOffering }: TenantQuotas): z.infer<typeof Quotas> {
  const usageOf = (q: PerOfferingQuota) =>
    [...byOffering].map(([offeringId, u]) => ({
      offeringId,
      used: q === 'restorePointsPerOffering' ? u.restorePoints : u.bytes,
    }));
  return Object.fromEntries(
    QUOTA_NAMES.map((q) => [
      q,
      {
        limit: limitOf(q, overrides),
        used: used[q],
        default: QUOTAS[q].default,
        ...(isPerOffering(q) ? { usage: usageOf(q) } : {}),
      },
    ]),
  ) as z.infer<typeof Quotas>;
}
