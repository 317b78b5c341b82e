import { sql, type Transaction } from 'kysely';
import { QuotaExceededError } from '../domain/errors.js';
import {
  check,
  isQuotaName,
  limitOf,
  QUOTA_NAMES,
  QUOTAS,
  type QuotaName,
  type QuotaOverrides,
} from '../domain/quotas.js';
import { HELD_STATES } from '../domain/task.js';
import { transact, type Db, type Dialect } from './db.js';
import type { Database } from './schema.js';

type Trx = Transaction<Database>;

/**
 * Quotas a create reserves (membersPerJob is the length of the list being written; runningTasks
 * is applied by the dispatcher, which leaves tasks queued rather than refusing anything).
 */
export type CountedQuota = Exclude<QuotaName, 'membersPerJob' | 'runningTasks'>;

/**
 * Per-tenant count quotas: the limits the service provider set (tenant_quotas) and what each
 * tenant uses. A create that adds to a quota calls {@link reserve} in the transaction that then
 * writes (every mutating API request is one transaction): the tenant's row is locked first, so
 * two requests of one tenant cannot both take the last free unit.
 */
export class QuotaRepository {
  constructor(
    private readonly db: Db,
    private readonly dialect: Dialect,
  ) {}

  /** The limits the service provider set for the tenant (quotas it did not set are absent). */
  async overrides(tenantId: string, db: Db | Trx = this.db): Promise<QuotaOverrides> {
    const rows = await db
      .selectFrom('tenantQuotas')
      .select(['quota', 'quotaLimit'])
      .where('tenantId', '=', tenantId)
      .execute();
    const out: QuotaOverrides = {};
    for (const r of rows) if (isQuotaName(r.quota)) out[r.quota] = Number(r.quotaLimit);
    return out;
  }

  /** Sets the given limits of the tenant, all or none; null puts a quota back to its default. */
  async set(tenantId: string, limits: Partial<Record<QuotaName, number | null>>, now = Date.now()): Promise<void> {
    await transact(this.db, async (trx) => {
      // Two PUTs of one tenant take their turn rather than collide on the same rows.
      await lockTenant(trx, tenantId);
      for (const [quota, limit] of Object.entries(limits)) {
        if (limit === undefined) continue;
        if (limit === null) {
          await trx.deleteFrom('tenantQuotas').where('tenantId', '=', tenantId).where('quota', '=', quota).execute();
          continue;
        }
        const set = { quotaLimit: limit, updatedAt: now };
        const insert = trx.insertInto('tenantQuotas').values({ tenantId, quota, ...set });
        await (
          this.dialect === 'mysql'
            ? insert.onDuplicateKeyUpdate(set)
            : insert.onConflict((oc) => oc.columns(['tenantId', 'quota']).doUpdateSet(set))
        ).execute();
      }
    });
  }

  /**
   * What the tenant uses of each quota. For the per-job quotas it is the most any one of its
   * jobs uses.
   */
  async usage(tenantId: string): Promise<Record<QuotaName, number>> {
    const counted = {} as Record<QuotaName, number>;
    for (const quota of QUOTA_NAMES) {
      if (quota === 'schedulesPerJob' || quota === 'membersPerJob' || quota === 'runningTasks') continue;
      counted[quota] = await this.count(this.db, tenantId, quota, false);
    }
    const perJob = await this.db
      .selectFrom('backupJobSchedules')
      .innerJoin('backupJobs', 'backupJobs.id', 'backupJobSchedules.jobId')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('backupJobs.tenantId', '=', tenantId)
      .groupBy('backupJobSchedules.jobId')
      .execute();
    counted.schedulesPerJob = Math.max(0, ...perJob.map((r) => Number(r.n)));
    const length =
      this.dialect === 'mysql' ? sql<number>`json_length(instance_ids)` : sql<number>`json_array_length(instance_ids)`;
    const members = await this.db
      .selectFrom('backupJobs')
      .select((eb) => eb.fn.max(length).as('n'))
      .where('tenantId', '=', tenantId)
      .executeTakeFirst();
    counted.membersPerJob = Number(members?.n ?? 0);
    const held = await this.db
      .selectFrom('tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('tenantId', '=', tenantId)
      .where('state', 'in', HELD_STATES)
      .executeTakeFirstOrThrow();
    counted.runningTasks = Number(held.n);
    return counted;
  }

  /**
   * The limit in force of `quota` for each of the given tenants (the default where the service
   * provider set none), in one query.
   */
  async limitsOf(quota: QuotaName, tenantIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>(tenantIds.map((id) => [id, QUOTAS[quota].default]));
    if (tenantIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('tenantQuotas')
      .select(['tenantId', 'quotaLimit'])
      .where('quota', '=', quota)
      .where('tenantId', 'in', [...out.keys()])
      .execute();
    for (const r of rows) out.set(r.tenantId, Number(r.quotaLimit));
    return out;
  }

  /**
   * Refuses (403 quota_exceeded, nothing written) when `adding` more would pass the tenant's
   * limit of `quota`; `jobId` names the job for schedulesPerJob (none: a job being created).
   * Locks the tenant's row before counting, so concurrent creates of one tenant take their turn;
   * on MySQL the count is a locking read, which sees what committed before the lock was granted
   * however early this transaction's snapshot began. SQLite runs one write transaction at a time.
   */
  async reserve(tenantId: string, quota: CountedQuota, adding: number, jobId?: string): Promise<void> {
    if (adding <= 0) return;
    await transact(this.db, async (trx) => {
      await lockTenant(trx, tenantId);
      const used =
        quota === 'schedulesPerJob'
          ? jobId === undefined
            ? 0
            : await this.count(trx, jobId, quota, true)
          : await this.count(trx, tenantId, quota, true);
      await this.assertWithin(tenantId, quota, used, adding, trx);
    });
  }

  /** Refuses (403 quota_exceeded) when `adding` more beside `used` would pass the tenant's limit. */
  async assertWithin(
    tenantId: string,
    quota: QuotaName,
    used: number,
    adding: number,
    db: Db | Trx = this.db,
  ): Promise<void> {
    if (adding <= 0) return;
    const verdict = check(quota, limitOf(quota, await this.overrides(tenantId, db)), used, adding);
    if (!verdict.ok) throw new QuotaExceededError(verdict.problem);
  }

  /** What `owner` (a tenant, or a job for schedulesPerJob) has of `quota`; `locking`: see reserve. */
  private async count(db: Db | Trx, owner: string, quota: CountedQuota, locking: boolean): Promise<number> {
    const table = (
      {
        instances: 'instances',
        userSchedules: 'userSchedules',
        jobs: 'backupJobs',
        schedulesPerJob: 'backupJobSchedules',
      } as const
    )[quota];
    const column = quota === 'schedulesPerJob' ? 'jobId' : 'tenantId';
    const q = db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where(column, '=', owner);
    const row = await (locking && this.dialect === 'mysql' ? q.forUpdate() : q).executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

/** Locks the tenant's row until the transaction ends (a write that changes nothing). */
async function lockTenant(trx: Trx, tenantId: string): Promise<void> {
  await trx
    .updateTable('tenants')
    .set({ name: sql<string>`name` })
    .where('id', '=', tenantId)
    .execute();
}
