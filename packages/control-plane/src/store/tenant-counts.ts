import type { Transaction } from 'kysely';
import type { Db } from './db.js';
import { upsert } from './compiled.js';
import { isMysql } from './dialect.js';
import type { Database } from './schema.js';

type Trx = Transaction<Database>;

/**
 * The count quotas kept as a count per tenant (`tenant_counts`) rather than counted at each
 * create. (A job's schedules are kept on the job's own row: `backup_jobs.schedule_count`.) Beside
 * them, not quotas, what the usage report reads: `protectedInstances`, the tenant's instances with
 * an offering, and `rpoBreachedInstances`, those with a breach recorded in `rpo_state`.
 */
export type KeptCount = 'instances' | 'userSchedules' | 'jobs' | 'protectedInstances' | 'rpoBreachedInstances';

/**
 * Moves the tenant's kept count of `quota` by `delta`, in `trx`: the transaction that makes or
 * removes what it counts, so the two commit together.
 */
export async function moveCount(trx: Trx, tenantId: string, quota: KeptCount, delta: number): Promise<void> {
  await upsert(trx, 'tenantCounts', { tenantId, quota, used: delta }, ['tenantId', 'quota'], { used: 'add' });
}

/**
 * The tenant's kept count of `quota`. `locking` (MySQL/MariaDB, in a transaction): read as
 * committed now and locked until the transaction ends; the row is made first if missing, as a
 * write (a locking read of a missing key would lock the gap beside it, where another tenant's
 * first count may go; `insert ignore` would take a shared lock, which a concurrent writer of the
 * row would deadlock against).
 */
export async function keptCount(db: Db | Trx, tenantId: string, quota: KeptCount, locking: boolean): Promise<number> {
  const lock = locking && isMysql(db);
  if (lock) await upsert(db, 'tenantCounts', { tenantId, quota, used: 0 }, ['tenantId', 'quota'], { used: 'keep' });
  const q = db.selectFrom('tenantCounts').select('used').where('tenantId', '=', tenantId).where('quota', '=', quota);
  const row = await (lock ? q.forUpdate() : q).executeTakeFirst();
  return Number(row?.used ?? 0);
}
