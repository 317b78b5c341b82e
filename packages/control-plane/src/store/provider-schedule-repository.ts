import type { Transaction } from 'kysely';
import type { Database, InstanceRow, OfferingRow, ProviderRow } from './schema.js';
import { INSTANCE_BY_ID, OFFERING_BY_ID, PROVIDER_BY_ID } from './catalog-rows.js';

type Trx = Transaction<Database>;

/**
 * The rows provider-side schedules are settled with (lifecycle/provider-schedules.ts decides
 * what changes), each read in the caller's transaction: outside a request, another handle would
 * wait for the transaction's connection. The instance's schedule columns are written by
 * CatalogRepository.setInstanceSchedule.
 */
export class ProviderScheduleRepository {
  /** The instance a schedule task is about, as it is now. */
  async instance(trx: Trx, id: string): Promise<InstanceRow | undefined> {
    return INSTANCE_BY_ID.first(trx, { id });
  }

  async offering(trx: Trx, id: string): Promise<OfferingRow | undefined> {
    return OFFERING_BY_ID.first(trx, { id });
  }

  /** The provider connection the offering's tasks go through. */
  async providerOf(trx: Trx, offering: OfferingRow): Promise<ProviderRow | undefined> {
    return PROVIDER_BY_ID.first(trx, { id: offering.providerId });
  }
}
