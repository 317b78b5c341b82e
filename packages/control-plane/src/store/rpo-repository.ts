import { transact, type Db } from './db.js';
import { filterOnly, isMysql } from './dialect.js';
import { moveCount, type KeptCount } from './tenant-counts.js';
import { trustedTime } from './trusted-time.js';
import type { RpoStateRow } from './schema.js';
import { template } from './compiled.js';

/** One instance on a watched offering, with its newest restore point and its recorded breach. */
export interface WatchedInstance {
  instanceId: string;
  tenantId: string;
  offeringId: string;
  /** When it got its offering (null for assignments made before this was recorded: its createdAt). */
  offeringSetAt: number | null;
  createdAt: number;
  lastBackupAt: number | null;
  /** The recorded breach, if any. */
  breachedAt: number | null;
}

/** Every recorded breach with its instance's offering now (read by every pass of the RPO watch). */
const BREACHES_WITH_OFFERING = template((db) =>
  db
    .selectFrom('rpoState')
    .leftJoin('instances', 'instances.id', 'rpoState.instanceId')
    .select(['rpoState.instanceId', 'instances.offeringId']),
);

/**
 * The RPO watch's state (`rpo_state`): one row per instance in breach. Raising and clearing a
 * breach are conditional writes (insert-or-ignore, delete-if-unchanged), so whichever replica
 * wins writes the one event, in the same transaction.
 */
export class RpoRepository {
  constructor(private readonly db: Db) {}

  /**
   * Up to `limit` instances of `offeringIds` after `afterId` (in id order), each with its newest
   * restore point and breach: one query per page, however many instances.
   */
  async watched(
    offeringIds: readonly string[],
    afterId: string | null,
    limit: number,
    onlyId?: string,
  ): Promise<WatchedInstance[]> {
    if (offeringIds.length === 0) return [];
    let q = this.db
      .selectFrom('instances')
      .leftJoin('rpoState', 'rpoState.instanceId', 'instances.id')
      .select((eb) => [
        'instances.id as instanceId',
        'instances.tenantId',
        'instances.offeringId',
        'instances.offeringSetAt',
        'instances.createdAt',
        'rpoState.breachedAt',
        eb
          .selectFrom('backups')
          .select((b) => b.fn.max(trustedTime).as('m'))
          .whereRef('backups.instanceId', '=', 'instances.id')
          .as('lastBackupAt'),
      ])
      // Walked in id order, the offerings a filter: by the (offering, id) index SQLite would read
      // and sort every remaining instance of the offerings for each page (a whole walk of 100,000
      // instances took 2.1 s so, 0.29 s by the primary key). MariaDB plans it well either way.
      .where(filterOnly(this.db, 'instances.offeringId'), 'in', [...offeringIds])
      .orderBy('instances.id')
      .limit(limit);
    if (afterId !== null) q = q.where('instances.id', '>', afterId);
    if (onlyId !== undefined) q = q.where('instances.id', '=', onlyId);
    const rows = await q.execute();
    return rows.map((r) => ({
      instanceId: r.instanceId,
      tenantId: r.tenantId,
      offeringId: r.offeringId!,
      offeringSetAt: r.offeringSetAt === null ? null : Number(r.offeringSetAt),
      createdAt: Number(r.createdAt),
      lastBackupAt: r.lastBackupAt === null || r.lastBackupAt === undefined ? null : Number(r.lastBackupAt),
      breachedAt: r.breachedAt === null ? null : Number(r.breachedAt),
    }));
  }

  /** One instance as `watched` reads it (fresh, inside the transaction that acts on it). */
  async watchedOne(instanceId: string, offeringIds: readonly string[]): Promise<WatchedInstance | undefined> {
    return (await this.watched(offeringIds, null, 1, instanceId))[0];
  }

  /**
   * Records a breach; false when one is recorded already (another writer raised it). The tenant's
   * kept count of instances in breach moves with it.
   */
  async raise(row: RpoStateRow): Promise<boolean> {
    return transact(this.db, async (trx) => {
      const r = await trx.insertInto('rpoState').values(row).orIgnore().executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) !== 1) return false;
      await moveCount(trx, row.tenantId, 'rpoBreachedInstances', 1);
      return true;
    });
  }

  /** Clears the breach recorded at `breachedAt`; false when another writer cleared it first. */
  async clear(instanceId: string, breachedAt: number): Promise<RpoStateRow | undefined> {
    return transact(this.db, async (trx) => {
      const row = await trx
        .selectFrom('rpoState')
        .selectAll()
        .where('instanceId', '=', instanceId)
        .where('breachedAt', '=', breachedAt)
        .executeTakeFirst();
      if (!row) return undefined;
      const r = await trx
        .deleteFrom('rpoState')
        .where('instanceId', '=', instanceId)
        .where('breachedAt', '=', breachedAt)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) return undefined;
      await moveCount(trx, row.tenantId, 'rpoBreachedInstances', -1);
      return row;
    });
  }

  /**
   * Drops, without an event, the breaches of instances no longer watched: deleted, without an
   * offering, or on one whose SLA has no rpoMinutes now. Returns how many went. Each batch reads
   * the rows it removes again in its transaction (locked on MySQL/MariaDB), so the tenants' kept
   * counts move by what went, whatever another writer cleared since the first read.
   */
  async forgetUnwatched(watchedOfferingIds: ReadonlySet<string>): Promise<number> {
    const rows = await BREACHES_WITH_OFFERING.all(this.db, {});
    const gone = rows
      .filter((r) => r.offeringId === null || !watchedOfferingIds.has(r.offeringId))
      .map((r) => r.instanceId)
      .sort();
    let forgot = 0;
    for (let i = 0; i < gone.length; i += 500) {
      const batch = gone.slice(i, i + 500);
      forgot += await transact(this.db, async (trx) => {
        const q = trx.selectFrom('rpoState').select(['instanceId', 'tenantId']).where('instanceId', 'in', batch);
        const there = await (isMysql(trx) ? q.forUpdate() : q).execute();
        if (there.length === 0) return 0;
        await trx
          .deleteFrom('rpoState')
          .where(
            'instanceId',
            'in',
            there.map((r) => r.instanceId),
          )
          .execute();
        const byTenant = new Map<string, number>();
        for (const r of there) byTenant.set(r.tenantId, (byTenant.get(r.tenantId) ?? 0) + 1);
        for (const [tenantId, n] of [...byTenant].sort(([a], [b]) => (a < b ? -1 : 1)))
          await moveCount(trx, tenantId, 'rpoBreachedInstances', -n);
        return there.length;
      });
    }
    return forgot;
  }

  /**
   * The oldest of the instances' newest restore points, or null when none has one (for
   * `/metrics`): the lowest of the latest trusted times kept per instance with its records
   * (`newest_backups`, BackupRepository), one seek of its index however many records there are.
   */
  async oldestLastBackup(): Promise<number | null> {
    const row = await this.db
      .selectFrom('newestBackups')
      .select((eb) => eb.fn.min('lastBackupAt').as('oldest'))
      .executeTakeFirst();
    return row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest);
  }

  /** Instances in breach, all tenants together (for `/metrics`): the tenants' kept counts summed. */
  async breached(): Promise<number> {
    const row = await this.db
      .selectFrom('tenantCounts')
      .select((eb) => eb.fn.sum<number>('used').as('n'))
      .where('quota', '=', 'rpoBreachedInstances' satisfies KeptCount)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
