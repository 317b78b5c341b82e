import { isSpAdmin, tenantScope, type Principal } from '../domain/access.js';
import { InputError, NotFoundError } from '../domain/errors.js';
import type { CatalogRepository, Sla } from '../store/catalog-repository.js';
import type { Page, PageRequest } from '../store/page.js';
import type { OfferingRow } from '../store/schema.js';
import type { TenantRepository } from '../store/tenant-repository.js';
import type { Operations } from './operations.js';
import { assertValidSchedule } from './schedules.js';
import type { Clock } from '../clock.js';

export interface NewOffering {
  name: string;
  description?: string | undefined;
  zone: string;
  providerId: string;
  externalId?: string | null | undefined;
  allowAdhoc: boolean;
  allowUserSchedules: boolean;
  minUserScheduleIntervalS?: number | undefined;
  sla?: Sla | null | undefined;
}

export type OfferingChange = Parameters<CatalogRepository['updateOffering']>[1];

/**
 * Backup offerings as the API changes them: an offering's provider connection and zone, its SLA
 * (checked by the scheduler's clock, and followed by the providers that run schedules), grants.
 */
export class Offerings {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly catalog: CatalogRepository,
    private readonly operations: Operations,
    /** What time it is: when an SLA set through the API starts counting. */
    private readonly clock: Clock,
  ) {}

  /** Creates an offering on a provider connection of its zone; the creator's tenant is granted it. */
  async create(p: Principal, input: NewOffering): Promise<OfferingRow> {
    const provider = await this.catalog.getProvider(input.providerId);
    if (!provider) {
      throw new InputError(`provider connection ${input.providerId} does not exist`, [
        { path: 'providerId', message: 'unknown provider connection' },
      ]);
    }
    if (provider.zone !== input.zone) {
      throw new InputError(`provider connection ${provider.id} is in zone ${provider.zone}, not ${input.zone}`, [
        { path: 'zone', message: `must match the provider connection's zone (${provider.zone})` },
      ]);
    }
    if (input.sla) this.checkSla(input.sla);
    return this.catalog.createOffering({
      tenantId: p.tenantId,
      name: input.name,
      description: input.description ?? '',
      zone: input.zone,
      providerId: provider.id,
      externalId: input.externalId ?? null,
      allowAdhoc: input.allowAdhoc,
      allowUserSchedules: input.allowUserSchedules,
      ...(input.minUserScheduleIntervalS !== undefined
        ? { minUserScheduleIntervalS: input.minUserScheduleIntervalS }
        : {}),
      sla: input.sla ?? null,
      slaSetAt: this.clock.now(),
    });
  }

  /** Every offering for an sp-admin; the granted ones for a tenant. */
  list(p: Principal, page: PageRequest): Promise<Page<OfferingRow>> {
    return this.catalog.listOfferings(page, tenantScope(p));
  }

  /** An offering the caller may see (a tenant: only if granted to it). */
  async visible(p: Principal, id: string): Promise<OfferingRow> {
    const row = await this.get(id);
    if (!isSpAdmin(p) && !(await this.catalog.isGranted(row.id, p.tenantId)))
      throw new NotFoundError('offering', row.id);
    return row;
  }

  /** Changes an offering; a new SLA applies from its next fire and reaches the providers that run schedules. */
  async update(id: string, patch: OfferingChange): Promise<OfferingRow> {
    const row = await this.get(id);
    if (patch.sla) this.checkSla(patch.sla);
    const changed = (await this.catalog.updateOffering(row.id, patch, this.clock.now()))!;
    // Queued, not awaited: each instance's configure-schedule or deconfigure-schedule task ends on its own.
    await this.operations.slaChanged(row, changed);
    return changed;
  }

  /** Deletes an offering no instance is assigned to. */
  async delete(id: string): Promise<void> {
    await this.catalog.deleteOffering((await this.get(id)).id);
  }

  async grant(id: string, tenantId: string): Promise<{ offeringId: string; tenantId: string }> {
    const row = await this.get(id);
    if (!(await this.tenants.get(tenantId))) {
      throw new InputError(`tenant ${tenantId} does not exist`, [{ path: 'tenantId', message: 'unknown tenant' }]);
    }
    await this.catalog.grant(row.id, tenantId);
    return { offeringId: row.id, tenantId };
  }

  async revoke(id: string, tenantId: string): Promise<void> {
    await this.catalog.revoke((await this.get(id)).id, tenantId);
  }

  private async get(id: string): Promise<OfferingRow> {
    const row = await this.catalog.getOffering(id);
    if (!row) throw new NotFoundError('offering', id);
    return row;
  }

  private checkSla(sla: Sla): void {
    assertValidSchedule(sla.cron, sla.timezone ?? 'UTC', this.clock.now(), { prefix: 'sla.' });
  }
}
