import type { Transaction } from 'kysely';
import type { DriftReport, StoredPages } from '../domain/sync.js';
import { HELD_STATES } from '../domain/task.js';
import { isUniqueViolation, type Db } from './db.js';
import type { Database, ProviderSyncRow, SyncPageRow } from './schema.js';

type Trx = Transaction<Database>;

/** The last applied sync of a provider, as GET .../drift shows it. */
export interface StoredDrift extends DriftReport {
  taskId: string;
  syncedAt: number;
}

/** What an applied sync leaves on its provider's row. */
export interface AppliedSync {
  taskId: string;
  syncedAt: number;
  report: DriftReport;
  /** When the provider's syncs began to be held; null: this one was not. */
  heldSince: number | null;
  /** The sync applied was the one an operator confirmed: the confirmation is spent. */
  confirmed: boolean;
}

/** An instance bound to a provider connection in its zone: what may own the connection's points. */
export interface BoundInstance {
  id: string;
  tenantId: string;
  name: string;
  offeringId: string | null;
}

/**
 * Provider syncs' rows (`provider_syncs`, one per provider connection): the sync queued or running
 * (at most one, a compare-and-set on `active_task_id`), the one an operator confirmed, the hold,
 * and the drift report of the last applied sync; and the rows a sync's listing is weighed
 * against. What a sync does is lifecycle/sync.ts's.
 */
export class SyncRepository {
  constructor(private readonly db: Db) {}

  /** The provider's row (its active task, if any), or undefined when no sync of it was ever queued. */
  async active(trx: Trx, providerId: string): Promise<{ activeTaskId: string | null } | undefined> {
    return trx
      .selectFrom('providerSyncs')
      .select('activeTaskId')
      .where('providerId', '=', providerId)
      .executeTakeFirst();
  }

  /**
   * Marks `taskId` as the sync an operator confirmed. A sync that ends before this commits is
   * not confirmed by it: its drift report still says held, and asking again confirms the next.
   */
  async confirm(trx: Trx, providerId: string, taskId: string): Promise<void> {
    await trx
      .updateTable('providerSyncs')
      .set({ confirmTaskId: taskId })
      .where('providerId', '=', providerId)
      .execute();
  }

  /**
   * Sets the row's active task to `taskId` if it still names `expected` (undefined: there is no row
   * yet, and the insert making it is the claim). The claim is the first lock taken on the row: of
   * two concurrent callers, the second waits for the first to commit and then finds it claimed.
   */
  async claim(
    trx: Trx,
    providerId: string,
    taskId: string,
    expected: string | null | undefined,
    now: number,
  ): Promise<boolean> {
    if (expected === undefined) {
      try {
        await trx
          .insertInto('providerSyncs')
          .values({ providerId, activeTaskId: taskId, taskId: null, syncedAt: null, report: null, createdAt: now })
          .execute();
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    }
    const r = await trx
      .updateTable('providerSyncs')
      .set({ activeTaskId: taskId })
      .where('providerId', '=', providerId)
      .where((eb) => (expected === null ? eb('activeTaskId', 'is', null) : eb('activeTaskId', '=', expected)))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The drift report of the provider's last applied sync, if it had one. */
  async drift(providerId: string): Promise<StoredDrift | undefined> {
    const row: Pick<ProviderSyncRow, 'taskId' | 'syncedAt' | 'report'> | undefined = await this.db
      .selectFrom('providerSyncs')
      .select(['taskId', 'syncedAt', 'report'])
      .where('providerId', '=', providerId)
      .executeTakeFirst();
    if (!row?.report || !row.taskId || row.syncedAt === null) return undefined;
    return { ...(JSON.parse(row.report) as DriftReport), taskId: row.taskId, syncedAt: row.syncedAt };
  }

  /** The hold of a provider whose sync was queued (its row exists): since when, and the sync confirmed. */
  async hold(trx: Trx, providerId: string): Promise<{ heldSince: number | null; confirmTaskId: string | null }> {
    return trx
      .selectFrom('providerSyncs')
      .select(['heldSince', 'confirmTaskId'])
      .where('providerId', '=', providerId)
      .executeTakeFirstOrThrow();
  }

  /** Records an applied sync: its drift report replaced, the hold kept, started or ended. */
  async applied(trx: Trx, providerId: string, a: AppliedSync): Promise<void> {
    await trx
      .updateTable('providerSyncs')
      .set({
        taskId: a.taskId,
        syncedAt: a.syncedAt,
        report: JSON.stringify(a.report),
        heldSince: a.heldSince,
        ...(a.confirmed ? { confirmTaskId: null } : {}),
      })
      .where('providerId', '=', providerId)
      .execute();
  }

  /** The instances bound to the connection in its zone: only they may own its points (see domain/sync.ts SyncInstance). */
  async boundInstances(trx: Trx, providerId: string, zone: string): Promise<BoundInstance[]> {
    return trx
      .selectFrom('instances')
      .innerJoin('offerings', 'offerings.id', 'instances.offeringId')
      .select(['instances.id', 'instances.tenantId', 'instances.name', 'instances.offeringId'])
      .where('offerings.providerId', '=', providerId)
      .where('instances.zone', '=', zone)
      .execute();
  }

  /** The instances with a backup through the connection queued or held by an agent. */
  async busyInstances(trx: Trx, providerId: string): Promise<Set<string | null>> {
    return new Set(
      (
        await trx
          .selectFrom('tasks')
          .select('instanceId')
          .where('providerId', '=', providerId)
          .where('kind', '=', 'backup')
          .where('state', 'in', ['queued', ...HELD_STATES])
          .execute()
      ).map((t) => t.instanceId),
    );
  }

  /**
   * External ids of the points of `providerId` whose delete was open at `since` or asked for or
   * ended after it: a listing asked for at `since` may still hold them although their records
   * are gone.
   */
  async deletedSince(trx: Trx, providerId: string, since: number): Promise<Set<string>> {
    const rows = await trx
      .selectFrom('tasks')
      .select('params')
      .where('providerId', '=', providerId)
      .where('kind', '=', 'delete-backup')
      .where((eb) => eb.or([eb('endedAt', 'is', null), eb('endedAt', '>=', since)]))
      .execute();
    const ids = new Set<string>();
    for (const r of rows) {
      const id = (JSON.parse(r.params) as { backupExternalId?: unknown }).backupExternalId;
      if (typeof id === 'string') ids.add(id);
    }
    return ids;
  }

  /** Stores a page of a sync's listing; a page stored already (sent again after a reconnect) is kept as it was. */
  async storePage(trx: Trx, row: SyncPageRow): Promise<void> {
    await trx.insertInto('syncPages').values(row).orIgnore().execute();
  }

  /** What is stored of an attempt's pages: how many, the last number, their points, the first unreadable one. */
  async storedPages(trx: Trx, taskId: string, attempt: number): Promise<StoredPages> {
    const of = trx.selectFrom('syncPages').where('taskId', '=', taskId).where('attempt', '=', attempt);
    const sums = await of
      .select((eb) => [
        eb.fn.countAll<number | string>().as('pages'),
        eb.fn.max<number | null>('page').as('lastPage'),
        eb.fn.sum<number | string | null>('points').as('points'),
      ])
      .executeTakeFirstOrThrow();
    const bad = await of.select('bad').where('bad', 'is not', null).orderBy('page').limit(1).executeTakeFirst();
    return {
      pages: Number(sums.pages),
      lastPage: sums.lastPage === null ? -1 : Number(sums.lastPage),
      points: Number(sums.points ?? 0),
      bad: bad?.bad ?? null,
    };
  }

  /** The bodies of an attempt's pages in page order, read `batch` pages at a time. */
  async *pageBodies(trx: Trx, taskId: string, attempt: number, batch = 50): AsyncGenerator<string> {
    for (let from = 0; ; from += batch) {
      const rows = await trx
        .selectFrom('syncPages')
        .select('body')
        .where('taskId', '=', taskId)
        .where('attempt', '=', attempt)
        .where('page', '>=', from)
        .where('page', '<', from + batch)
        .orderBy('page')
        .execute();
      if (rows.length === 0) return;
      for (const r of rows) yield r.body;
    }
  }

  /** The pages of every attempt of a task that ended: they are read only before its end. */
  async dropPages(trx: Trx, taskId: string): Promise<void> {
    await trx.deleteFrom('syncPages').where('taskId', '=', taskId).execute();
  }
}
