import { sql, type Transaction } from 'kysely';
import { QuotaExceededError } from '../domain/errors.js';
import { byKeyOf } from '../domain/key-order.js';
import {
  check,
  checkBackupStart,
  isPerOffering,
  isQuotaName,
  limitOf,
  QUOTA_NAMES,
  QUOTAS,
  type OfferingUsage,
  type PerOfferingQuota,
  type QuotaExceeded,
  type QuotaName,
  type QuotaOverrides,
} from '../domain/quotas.js';
import { HELD_STATES, TASK_STATES, isTerminal } from '../domain/task.js';
import { transact, type Db, type Dialect } from './db.js';
import { throughIndex } from './dialect.js';
import { upsert } from './compiled.js';
import { keptCount } from './tenant-counts.js';
import type { Clock } from '../clock.js';
import type { Database } from './schema.js';

type Trx = Transaction<Database>;

/**
 * Quotas whose usage the store counts per tenant or job (membersPerJob is the length of the list
 * being written; the per-offering ones are counted by {@link QuotaRepository.backupRefusal};
 * runningTasks is applied by the dispatcher, which leaves tasks queued rather than refusing anything).
 */
export type CountedQuota = Exclude<QuotaName, 'membersPerJob' | 'runningTasks' | PerOfferingQuota>;

/** A backup task in these states counts as a restore point: it may become one. */
const IN_FLIGHT = TASK_STATES.filter((s) => !isTerminal(s));

const NOTHING: OfferingUsage = { restorePoints: 0, bytes: 0 };

/**
 * Per-tenant count quotas: the limits the service provider set (tenant_quotas) and what each
 * tenant uses. A create that adds to a quota calls {@link reserve} in the transaction that then
 * writes (every mutating API request is one transaction): the tenant's row is locked first, so
 * two requests of one tenant cannot both take the last free unit.
 */
export class QuotaRepository {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
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
  async set(
    tenantId: string,
    limits: Partial<Record<QuotaName, number | null>>,
    now = this.clock.now(),
  ): Promise<void> {
    await transact(this.db, async (trx) => {
      // Two PUTs of one tenant take their turn rather than collide on the same rows.
      await lockTenant(trx, tenantId);
      for (const [quota, limit] of Object.entries(limits)) {
        if (limit === undefined) continue;
        if (limit === null) {
          await trx.deleteFrom('tenantQuotas').where('tenantId', '=', tenantId).where('quota', '=', quota).execute();
          continue;
        }
        const row = { tenantId, quota, quotaLimit: limit, updatedAt: now };
        await upsert(trx, 'tenantQuotas', row, ['tenantId', 'quota'], { quotaLimit: 'set', updatedAt: 'set' });
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
      if (quota === 'schedulesPerJob' || quota === 'membersPerJob' || quota === 'runningTasks' || isPerOffering(quota))
        continue;
      counted[quota] = await this.count(this.db, tenantId, quota, false);
    }
    // The most any one job has: each job's counts are kept on its row, and each read from the end
    // of its own index by (tenant, count) (one `max` a statement, so that each is).
    for (const [quota, column] of [
      ['schedulesPerJob', 'scheduleCount'],
      ['membersPerJob', 'memberCount'],
    ] as const) {
      const most = await this.db
        .selectFrom('backupJobs')
        .select((eb) => eb.fn.max(column).as('n'))
        .where('tenantId', '=', tenantId)
        .executeTakeFirst();
      counted[quota] = Number(most?.n ?? 0);
    }
    const held = await this.db
      .selectFrom('tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('tenantId', '=', tenantId)
      .where('state', 'in', HELD_STATES)
      .executeTakeFirstOrThrow();
    counted.runningTasks = Number(held.n);
    const byOffering = await this.usageByOffering(tenantId);
    counted.restorePointsPerOffering = Math.max(0, ...[...byOffering.values()].map((u) => u.restorePoints));
    counted.bytesPerOffering = Math.max(0, ...[...byOffering.values()].map((u) => u.bytes));
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
   * What the tenant uses of the per-offering quotas in each offering it has restore points or
   * backups in, or an instance on (in offering id order).
   */
  async usageByOffering(tenantId: string): Promise<Map<string, OfferingUsage>> {
    const counted = await this.offeringUsage(this.db, tenantId, undefined, false);
    // The offerings of the tenant's instances, each found by one seek from the one before along
    // (tenant, offering), never a walk of every instance. One statement a step: MariaDB answers
    // such a `min` from the index alone, but not where it refers to a row of a recursive query,
    // nor with `offering_id is not null` (which `min` needs not: it skips nulls).
    for (let after: string | undefined; ;) {
      const row = await this.db
        .selectFrom('instances')
        .select((eb) => eb.fn.min<string | null>('offeringId').as('id'))
        .where('tenantId', '=', tenantId)
        .$if(after !== undefined, (q) => q.where('offeringId', '>', after!))
        .executeTakeFirst();
      const next = row?.id ?? null;
      if (next === null) break;
      if (!counted.has(next)) counted.set(next, NOTHING);
      after = next;
    }
    return new Map([...counted].sort(byKeyOf(([key]) => key)));
  }

  /**
   * Why one more backup of the tenant may not start in `offeringId` now (see checkBackupStart),
   * or undefined when it may. Locks the tenant's row and counts with locking reads, as
   * {@link reserve} does, in `trx` (a task-ending or run-starting transaction) or the request's:
   * the backup task must be written in that same transaction, so concurrent starts take their turn.
   */
  async backupRefusal(tenantId: string, offeringId: string, trx?: Trx): Promise<QuotaExceeded | undefined> {
    const judge = async (t: Trx) =>
      (await this.backupStarts([{ tenantId, offeringId }], t)).refusal(tenantId, offeringId);
    return trx ? judge(trx) : transact(this.db, judge);
  }

  /**
   * For backups starting together in one transaction (a batch of schedule fires), of tenants in
   * offerings: what {@link backupRefusal} would say of each in turn, as each one started counts
   * toward the next. Locks the tenants' rows (in id order) and counts once per tenant and
   * offering, in `trx`; the backup tasks must be written in that transaction.
   */
  async backupStarts(pairs: readonly { tenantId: string; offeringId: string }[], trx: Trx): Promise<BackupStarts> {
    const tenants = [...new Set(pairs.map((p) => p.tenantId))].sort();
    for (const tenantId of tenants) await lockTenant(trx, tenantId);
    const overrides = new Map<string, QuotaOverrides>();
    for (const tenantId of tenants) overrides.set(tenantId, await this.overrides(tenantId, trx));
    const used = new Map<string, OfferingUsage>();
    for (const { tenantId, offeringId } of pairs) {
      const key = `${tenantId} ${offeringId}`;
      if (used.has(key)) continue;
      used.set(key, (await this.offeringUsage(trx, tenantId, offeringId, true)).get(offeringId) ?? NOTHING);
    }
    return new BackupStarts(overrides, used);
  }

  /** Refuses (403 quota_exceeded, naming the quota and offering) a backup {@link backupRefusal} would not start. */
  async reserveBackup(tenantId: string, offeringId: string): Promise<void> {
    const refused = await this.backupRefusal(tenantId, offeringId);
    if (refused) throw new QuotaExceededError(refused);
  }

  /**
   * The tenant's restore points and bytes per offering: records neither vanished nor deleted (a
   * delete asked for frees its room at once; one that failed gives it back), as BackupRepository
   * keeps them counted with the records (one row per offering, however many points), plus backup
   * tasks not yet ended, which may each become one. `locking`: see reserve.
   */
  private async offeringUsage(
    db: Db | Trx,
    tenantId: string,
    offeringId: string | undefined,
    locking: boolean,
  ): Promise<Map<string, OfferingUsage>> {
    let points = db
      .selectFrom('restorePointUsage')
      .select(['offeringId', 'restorePoints', 'bytes'])
      .where('tenantId', '=', tenantId)
      .where('restorePoints', '>', 0);
    let flying = db
      .selectFrom('tasks')
      .select((eb) => ['offeringId', eb.fn.countAll<number>().as('n')])
      .where('tenantId', '=', tenantId)
      .where('kind', '=', 'backup')
      .where('state', 'in', IN_FLIGHT)
      .groupBy('offeringId');
    if (offeringId !== undefined) {
      points = points.where('offeringId', '=', offeringId);
      flying = flying.where('offeringId', '=', offeringId);
    }
    const lock = locking && this.dialect === 'mysql';
    // Tasks before the count of records, in the order a backup's end writes them (its task, then
    // its record and the count): a locking read taken the other way round would wait for that end
    // while holding what it needs. The tasks are read through an index that starts at the tenant
    // (on MySQL/MariaDB, where a locking read locks every row it reads): its own rows, never
    // another tenant's.
    flying = throughIndex(db, flying, 'tasks', 'tasks_tenant_state');
    const inFlight = await (lock ? flying.forUpdate() : flying).execute();
    if (lock && offeringId !== undefined) {
      // The count's row is made first if missing: a locking read of a missing key would lock the
      // gap beside it, where another tenant's first count may be written. An update of nothing
      // when it is there, which locks it for writing at once (`insert ignore` would take a shared
      // lock, and a backup's end waiting to write between it and the read below would deadlock).
      await upsert(
        db,
        'restorePointUsage',
        { tenantId, offeringId, restorePoints: 0, bytes: 0, records: 0, storedBytes: 0, protectedBytes: 0 },
        ['tenantId', 'offeringId'],
        { restorePoints: 'keep' },
      );
    }
    const out = new Map<string, OfferingUsage>();
    for (const r of await (lock ? points.forUpdate() : points).execute()) {
      out.set(r.offeringId, { restorePoints: Number(r.restorePoints), bytes: Number(r.bytes) });
    }
    for (const r of inFlight) {
      if (r.offeringId === null) continue;
      const u = out.get(r.offeringId) ?? NOTHING;
      out.set(r.offeringId, { ...u, restorePoints: u.restorePoints + Number(r.n) });
    }
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

  /**
   * What `owner` (a tenant, or a job for schedulesPerJob) has of `quota`: kept as a count where
   * the rows are made and removed (store/tenant-counts.ts; a job's schedules on the job's row),
   * so one row is read however many there are. `locking`: see reserve.
   */
  private async count(db: Db | Trx, owner: string, quota: CountedQuota, locking: boolean): Promise<number> {
    if (quota !== 'schedulesPerJob') return keptCount(db, owner, quota, locking);
    const q = db.selectFrom('backupJobs').select('scheduleCount').where('id', '=', owner);
    const row = await (locking && this.dialect === 'mysql' ? q.forUpdate() : q).executeTakeFirst();
    return Number(row?.scheduleCount ?? 0);
  }
}

/** Per-offering quota verdicts for backups starting together (see QuotaRepository.backupStarts). */
export class BackupStarts {
  constructor(
    private readonly overrides: Map<string, QuotaOverrides>,
    private readonly used: Map<string, OfferingUsage>,
  ) {}

  /** Why one more backup of the tenant may not start in the offering now, or undefined. */
  refusal(tenantId: string, offeringId: string): QuotaExceeded | undefined {
    const verdict = checkBackupStart(offeringId, this.overrides.get(tenantId) ?? {}, this.usage(tenantId, offeringId));
    return verdict.ok ? undefined : verdict.problem;
  }

  /** One more backup started: a task in flight, counted as a restore point. */
  started(tenantId: string, offeringId: string): void {
    const u = this.usage(tenantId, offeringId);
    this.used.set(`${tenantId} ${offeringId}`, { ...u, restorePoints: u.restorePoints + 1 });
  }

  private usage(tenantId: string, offeringId: string): OfferingUsage {
    const u = this.used.get(`${tenantId} ${offeringId}`);
    if (!u) throw new Error(`no usage counted for tenant ${tenantId} in offering ${offeringId}`);
    return u;
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
