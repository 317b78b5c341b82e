import type { Db } from './db.js';
import { decodeCursor, pageOf, type Page, type PageRequest } from './page.js';
import type { KeptCount } from './tenant-counts.js';

/** Billing figures, read from the counts and usage kept with instances and backups; writes nothing. */
export class UsageRepository {
  constructor(private readonly db: Db) {}

  /**
   * Billing figures per tenant: instances with an offering and without one, those in breach of
   * their offering's RPO (as the RPO watch recorded it at its last tick), restore points, bytes the provider
   * stores for them (added bytes of incrementals, full size otherwise), and bytes protected (the
   * newest backup's size of each instance).
   */
  async perTenant(
    page: PageRequest,
    tenantId?: string,
  ): Promise<
    Page<{
      tenantId: string;
      protectedInstances: number;
      unprotectedInstances: number;
      rpoBreachedInstances: number;
      backups: number;
      storedBytes: number;
      protectedBytes: number;
    }>
  > {
    const after = decodeCursor(page.cursor);
    const tenantPage = pageOf(
      await this.db
        .selectFrom('tenants')
        .select('id')
        .$if(tenantId !== undefined, (q) => q.where('id', '=', tenantId!))
        .$if(after !== undefined, (q) => q.where('id', '>', after!))
        .orderBy('id')
        .limit(page.limit + 1)
        .execute(),
      page.limit,
    );
    const tenants = tenantPage.items;
    if (tenants.length === 0) return { items: [], nextCursor: null };
    // The figures of this page's tenants only: the page bounds the work, not just the answer.
    const ids = tenants.map((t) => t.id);
    // The tenants' instances, those with an offering (CatalogRepository) and those in breach of
    // their offering's RPO (RpoRepository, as the RPO watch recorded it at its last tick), as
    // kept with them.
    const countRows = await this.db
      .selectFrom('tenantCounts')
      .select(['tenantId', 'quota', 'used'])
      .where('tenantId', 'in', ids)
      .where('quota', 'in', ['instances', 'protectedInstances', 'rpoBreachedInstances'] satisfies KeptCount[])
      .execute();
    // Every record, the bytes stored and the bytes protected (each instance's newest record's
    // size), as kept with the records per offering (BackupRepository).
    const backupRows = await this.db
      .selectFrom('restorePointUsage')
      .select([
        'tenantId',
        (eb) => eb.fn.sum<number>('records').as('n'),
        (eb) => eb.fn.sum<number>('storedBytes').as('stored'),
        (eb) => eb.fn.sum<number>('protectedBytes').as('protected'),
      ])
      .where('tenantId', 'in', ids)
      .groupBy('tenantId')
      .execute();
    const counts = new Map(countRows.map((r) => [`${r.tenantId} ${r.quota}`, Number(r.used)]));
    const kept = (tenantId: string, quota: KeptCount) => counts.get(`${tenantId} ${quota}`) ?? 0;
    const backupsBy = new Map(backupRows.map((r) => [r.tenantId, r]));
    const items = tenants.map(({ id }) => ({
      tenantId: id,
      protectedInstances: kept(id, 'protectedInstances'),
      unprotectedInstances: kept(id, 'instances') - kept(id, 'protectedInstances'),
      rpoBreachedInstances: kept(id, 'rpoBreachedInstances'),
      backups: Number(backupsBy.get(id)?.n ?? 0),
      storedBytes: Number(backupsBy.get(id)?.stored ?? 0),
      protectedBytes: Number(backupsBy.get(id)?.protected ?? 0),
    }));
    return { items, nextCursor: tenantPage.nextCursor };
  }
}
