import type { TenantLocators } from '../../../domain/locator-claims.js';
import type { ProviderRow } from '../../../store/schema.js';
import type { StoredDrift } from '../../../store/sync-repository.js';
import { iso } from '../../views.js';

export const providerView = (p: ProviderRow) => ({
  id: p.id,
  zone: p.zone,
  name: p.name,
  plugin: p.plugin,
  endpoint: p.endpoint,
  config: JSON.parse(p.config) as unknown,
  hasCredentials: p.credentialsEnc !== null,
  tenantLocators: p.tenantLocators as TenantLocators,
  exportTo: p.exportTo,
  repositoryIdentity: p.repositoryIdentity,
  createdAt: iso(p.createdAt),
  updatedAt: iso(p.updatedAt),
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
