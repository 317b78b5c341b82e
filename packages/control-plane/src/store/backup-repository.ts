import { sql, type Transaction } from 'kysely';
import { backupName } from '../domain/backup-name.js';
import { adoptedRecordedAt, isFutureDated, madeRecordedAt, type RecordedPoint } from '../domain/retention.js';
import type { Db } from './db.js';
import type { Clock } from '../clock.js';
import { newId } from './ids.js';
import { insertRows, ShapedTemplate, template, upsert } from './compiled.js';
import { decodeCursor, pageOf, type Page, type PageRequest } from './page.js';
import type { BackupRow, Database, RestorePointUsageRow, TaskRow } from './schema.js';
import { isMysql, throughIndex } from './dialect.js';
import { byKey } from '../domain/key-order.js';
import { TERMINAL_STATES } from '../domain/task.js';
import { trustedAt, trustedTime } from './trusted-time.js';

type Trx = Transaction<Database>;

/* The queries a task's end runs to record its restore point, compiled once (see compiled.ts). */
const INSTANCE_NAME = template((db, p: { id: string }) =>
  db.selectFrom('instances').select(['name']).where('id', '=', p.id),
);
const PARENT_BY_EXTERNAL_ID = template((db, p: { instanceId: string; externalId: string }) =>
  db.selectFrom('backups').select('id').where('instanceId', '=', p.instanceId).where('externalId', '=', p.externalId),
);
const LATEST_RECORDED = template((db, p: { instanceId: string }) =>
  db
    .selectFrom('backups')
    .select((eb) => eb.fn.max('recordedAt').as('latest'))
    .where('instanceId', '=', p.instanceId),
);
const RECORDED_POINTS = template((db, p: { instanceId: string }) =>
  db.selectFrom('backups').select(['recordedAt', 'taskId']).where('instanceId', '=', p.instanceId),
);
/** An instance's newest record as kept; on MySQL/MariaDB a current read, locked (see lockNewest). */
const NEWEST_HELD = template((db, p: { instanceId: string }) => {
  const q = db
    .selectFrom('newestBackups')
    .select(['tenantId', 'backupId', 'offeringId', 'sizeBytes', 'lastBackupAt'])
    .where('instanceId', '=', p.instanceId);
  return isMysql(db) ? q.forUpdate() : q;
});
const TASK_BACKUP_ID = template((db, p: { id: string; backupId: string }) =>
  db.updateTable('tasks').set({ backupId: p.backupId }).where('id', '=', p.id),
);
/** A page of records, newest first: shaped by which of the cursor and the two filters it has. */
const BACKUP_PAGE = new ShapedTemplate<
  { before: boolean; tenant: boolean; instance: boolean },
  { before: string; tenantId: string; instanceId: string; limit: number },
  BackupRow
>(
  (s) => `${+s.before}${+s.tenant}${+s.instance}`,
  (db, p, s) => {
    const index = s.instance ? 'backups_instance_newest' : s.tenant ? 'backups_tenant_newest' : undefined;
    const from = db.selectFrom('backups');
    let q = (index ? throughIndex(db, from, 'backups', index) : from).selectAll().orderBy('id', 'desc').limit(p.limit);
    if (s.before) q = q.where('id', '<', p.before);
    if (s.tenant) q = q.where('tenantId', '=', p.tenantId);
    if (s.instance) q = q.where('instanceId', '=', p.instanceId);
    return q;
  },
);

/** A delete that ended so leaves its record in place: the point counts again. */
const UNDONE_DELETE = TERMINAL_STATES.filter((s) => s !== 'succeeded');

/** A record as its tenant's usage weighs it; `counts`: toward the per-offering quotas. */
type Tallied = Pick<
  BackupRow,
  | 'id'
  | 'tenantId'
  | 'offeringId'
  | 'instanceId'
  | 'sizeBytes'
  | 'addedBytes'
  | 'deleteTaskId'
  | 'createdAt'
  | 'recordedAt'
> & {
  counts: boolean;
};
/** An instance's newest record, as the bytes protected count it. */
type Newest = Pick<BackupRow, 'id' | 'tenantId' | 'offeringId' | 'sizeBytes'>;
/** What `newest_backups` keeps of an instance, read under its row's lock. */
interface Held {
  /** Its newest record (null: none). */
  newest: Newest | null;
  /** Its latest trusted restore point time (null: none). */
  lastBackupAt: number | null;
}
/** What some records add to their tenants' usage, by `tenant offering`. */
type UsageDelta = Map<string, RestorePointUsageRow>;

/** The provider and instance a restore point's delete goes through. */
export interface DeleteTarget {
  providerId: string;
  plugin: string;
  zone: string;
  agentId: string | null;
  locator: string;
}

/** Restore points: written when a backup task succeeds, read by the API and the next incremental. */
export class BackupRepository {
  constructor(
    private readonly db: Db,
    /** When a restore point was made: the RPO watch compares its age with this clock's now. */
    private readonly clock: Clock,
  ) {}

  /** A record by id (through `db`: a transaction reads it there). */
  async get(id: string, db: Db | Trx = this.db): Promise<BackupRow | undefined> {
    return db.selectFrom('backups').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Whether the record is still there (a sync may have removed it). */
  async exists(trx: Trx, id: string): Promise<boolean> {
    return (await trx.selectFrom('backups').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  async list(page: PageRequest, filter: { tenantId?: string; instanceId?: string }): Promise<Page<BackupRow>> {
    const before = decodeCursor(page.cursor);
    const shape = {
      before: before !== undefined,
      tenant: filter.tenantId !== undefined,
      instance: filter.instanceId !== undefined,
    };
    const params = {
      before: before ?? '',
      tenantId: filter.tenantId ?? '',
      instanceId: filter.instanceId ?? '',
      limit: page.limit + 1,
    };
    return pageOf((await BACKUP_PAGE.run(this.db, shape, params)).rows, page.limit);
  }

  /** The newest backup of an instance (parent of the next incremental), ranked as keep-last ranks. */
  async latest(instanceId: string): Promise<BackupRow | undefined> {
    return this.db
      .selectFrom('backups')
      .selectAll()
      .where('instanceId', '=', instanceId)
      .orderBy('recordedAt', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
  }

  /**
   * The instance's latest record, all that a made point's recorded time depends on (one indexed
   * read, however many records the instance has).
   */
  private async latestRecorded(trx: Trx, instanceId: string): Promise<{ recordedAt: number }[]> {
    const latest = (await LATEST_RECORDED.first(trx, { instanceId }))?.latest;
    return latest === null || latest === undefined ? [] : [{ recordedAt: Number(latest) }];
  }

  /** The instance's records as the recorded-time rules weigh them (those Cairn made have a task). */
  private async recordedPoints(trx: Trx, instanceId: string): Promise<RecordedPoint[]> {
    const rows = await RECORDED_POINTS.all(trx, { instanceId });
    return rows.map((r) => ({ recordedAt: Number(r.recordedAt), made: r.taskId !== null }));
  }

  /** One backup record per task: the unique task_id makes a second insert impossible. */
  async recordFromTask(
    trx: Trx,
    task: TaskRow,
    meta: { externalId: string; sizeBytes: number; addedBytes: number; mode: string; parentExternalId: string },
    now: number,
  ): Promise<void> {
    if (!task.instanceId || !task.offeringId) return;
    const instance = await INSTANCE_NAME.first(trx, { id: task.instanceId });
    const parent = meta.parentExternalId
      ? await PARENT_BY_EXTERNAL_ID.first(trx, { instanceId: task.instanceId, externalId: meta.parentExternalId })
      : undefined;
    const madeAt = this.clock.now();
    const row: BackupRow = {
      id: newId('bkp', now),
      tenantId: task.tenantId,
      instanceId: task.instanceId,
      offeringId: task.offeringId,
      taskId: task.id,
      name: backupName(instance?.name ?? task.instanceId, madeAt),
      mode: meta.mode === 'INCREMENT' ? 'INCREMENT' : 'FULL',
      createdAt: madeAt,
      sizeBytes: meta.sizeBytes,
      addedBytes: meta.addedBytes,
      externalId: meta.externalId,
      parentId: parent?.id ?? null,
      expiresAt: null,
      deleteTaskId: null,
      vanishedAt: null,
      recordedAt: madeRecordedAt(await this.latestRecorded(trx, task.instanceId), madeAt),
    };
    const held = await this.lockNewest(trx, new Map([[row.instanceId, row.tenantId]]));
    await insertRows(trx, 'backups', [row]);
    await this.addUsage(trx, await this.written(trx, row, held, difference([], [{ ...row, counts: true }])));
    await TASK_BACKUP_ID.run(trx, { id: task.id, backupId: row.id });
  }

  /** Whether any restore point is recorded through a provider connection (vanished and being deleted too). */
  async anyOfProvider(trx: Trx, providerId: string): Promise<boolean> {
    const row = await trx
      .selectFrom('backups')
      .innerJoin('offerings', 'offerings.id', 'backups.offeringId')
      .select('backups.id')
      .where('offerings.providerId', '=', providerId)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Every record of a provider's restore points (through the offerings on it), as sync compares them. */
  async ofProvider(trx: Trx, providerId: string): Promise<BackupRow[]> {
    return trx
      .selectFrom('backups')
      .innerJoin('offerings', 'offerings.id', 'backups.offeringId')
      .selectAll('backups')
      .where('offerings.providerId', '=', providerId)
      .execute();
  }

  /**
   * A record for a restore point a sync found and no record named: the provider made it (an
   * operator, another tool, a backup whose result never arrived), so it is written as the
   * listing describes it, on the owner instance's current offering. `futureDated`: the provider
   * dated it ahead of `now` (beyond the skew allowance), so it ranks below the instance's backups.
   */
  async adopt(
    trx: Trx,
    instance: { id: string; tenantId: string; name: string; offeringId: string },
    point: {
      externalId: string;
      createdAt: number;
      sizeBytes: number;
      mode: string | null;
      parentId: string | null;
      expiresAt: number | null;
    },
    now: number,
  ): Promise<{ row: BackupRow; futureDated: boolean }> {
    // The instance's records matter only to a future-dated point: a sync that adopts thousands of
    // points into one instance reads them for none of the others.
    const { recordedAt, futureDated } = adoptedRecordedAt(
      isFutureDated(point.createdAt, now) ? await this.recordedPoints(trx, instance.id) : [],
      point.createdAt,
      now,
    );
    const row: BackupRow = {
      id: newId('bkp', now),
      tenantId: instance.tenantId,
      instanceId: instance.id,
      offeringId: instance.offeringId,
      // task_id is unique (one record per backup task): the adopting sync is named by the
      // backup.adopted event and the drift report instead.
      taskId: null,
      name: backupName(instance.name, point.createdAt),
      mode: point.mode === 'INCREMENT' ? 'INCREMENT' : 'FULL',
      createdAt: point.createdAt,
      sizeBytes: point.sizeBytes,
      addedBytes: null,
      externalId: point.externalId,
      parentId: point.parentId,
      expiresAt: point.expiresAt,
      deleteTaskId: null,
      vanishedAt: null,
      recordedAt,
    };
    const held = await this.lockNewest(trx, new Map([[row.instanceId, row.tenantId]]));
    await trx.insertInto('backups').values(row).execute();
    await this.addUsage(trx, await this.written(trx, row, held, difference([], [{ ...row, counts: true }])));
    return { row, futureDated };
  }

  /** Marks records as vanished from their provider (`at`), or clears the mark (null). */
  async setVanished(trx: Trx, ids: readonly string[], at: number | null): Promise<void> {
    if (ids.length === 0) return;
    await this.recounting(trx, ids, () =>
      trx.updateTable('backups').set({ vanishedAt: at }).where('id', 'in', ids).execute(),
    );
  }

  /**
   * A record whose delete was asked for and whose point the provider no longer lists: the
   * provider did what was asked, so it goes (only while a delete is still named on it).
   */
  async removeGone(trx: Trx, id: string): Promise<boolean> {
    const r = await this.recounting(
      trx,
      [id],
      () => trx.deleteFrom('backups').where('id', '=', id).where('deleteTaskId', 'is not', null).executeTakeFirst(),
      'removes',
    );
    return Number(r.numDeletedRows) === 1;
  }

  /** Every record of an instance, as retention weighs them (and the delete under way, if any). */
  async ofInstance(trx: Trx, instanceId: string): Promise<BackupRow[]> {
    return trx.selectFrom('backups').selectAll().where('instanceId', '=', instanceId).execute();
  }

  /**
   * What a delete of `backup` goes through: its own offering's provider and its instance (zone,
   * agent, locator), or undefined when either no longer exists.
   */
  async deleteTarget(trx: Trx, backup: BackupRow): Promise<DeleteTarget | undefined> {
    const provider = await trx
      .selectFrom('offerings')
      .innerJoin('providers', 'providers.id', 'offerings.providerId')
      .select(['providers.id as providerId', 'providers.plugin'])
      .where('offerings.id', '=', backup.offeringId)
      .executeTakeFirst();
    const instance = await trx
      .selectFrom('instances')
      .select(['zone', 'agentId', 'locator'])
      .where('id', '=', backup.instanceId)
      .executeTakeFirst();
    return provider && instance ? { ...provider, ...instance } : undefined;
  }

  /**
   * Marks `backupId` as being deleted by `taskId`, only if it still names `expected` (null, or a
   * task that ended): a compare-and-set, so of two concurrent deleters one wins.
   */
  async claimDelete(trx: Trx, backupId: string, taskId: string, expected: string | null): Promise<boolean> {
    const r = await this.recounting(trx, [backupId], () =>
      trx
        .updateTable('backups')
        .set({ deleteTaskId: taskId })
        .where('id', '=', backupId)
        .where((eb) => (expected === null ? eb('deleteTaskId', 'is', null) : eb('deleteTaskId', '=', expected)))
        .executeTakeFirst(),
    );
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * The delete task `taskId` of `backupId` ended other than succeeded, in this transaction: the
   * record stays, and counts toward its tenant's quotas again (while the task was under way it
   * did not). Nothing when the record is gone or names another delete.
   */
  async deleteUndone(trx: Trx, backupId: string, taskId: string): Promise<void> {
    const now = (await this.tally(trx, [backupId])).filter((r) => r.deleteTaskId === taskId);
    await this.addUsage(
      trx,
      difference(
        now.map((r) => ({ ...r, counts: false })),
        now,
      ),
    );
  }

  /** The provider confirmed the delete: the record goes (only the claiming task can remove it). */
  async removeDeleted(trx: Trx, backupId: string, taskId: string): Promise<boolean> {
    const r = await this.recounting(
      trx,
      [backupId],
      () => trx.deleteFrom('backups').where('id', '=', backupId).where('deleteTaskId', '=', taskId).executeTakeFirst(),
      'removes',
    );
    return Number(r.numDeletedRows) === 1;
  }

  /**
   * `change` of the records `ids`, with their tenants' usage moved by what it changed of those
   * records (each counted before, after, both or neither); a change that `removes` records moves
   * the bytes protected by what it changed of their instances' newest records too.
   */
  private async recounting<T>(
    trx: Trx,
    ids: readonly string[],
    change: () => Promise<T>,
    removes?: 'removes',
  ): Promise<T> {
    const before = await this.tally(trx, ids);
    const held = removes
      ? await this.lockNewest(trx, new Map(before.map((r) => [r.instanceId, r.tenantId])))
      : new Map<string, Held>();
    const result = await change();
    const after = await this.tally(trx, ids);
    const moved = difference(before, after);
    // An instance that lost a record: its latest trusted time read again from those left (unless
    // every record it lost was earlier than the kept time, which one of those left still holds),
    // and, when its newest record went, its newest is now the one before (none: none).
    const left = new Set(after.map((r) => r.id));
    for (const [instanceId, { newest, lastBackupAt }] of held) {
      const gone = before.filter((r) => r.instanceId === instanceId && !left.has(r.id));
      if (gone.length === 0) continue;
      const latest =
        lastBackupAt !== null && gone.every((r) => trustedAt(r) < lastBackupAt)
          ? lastBackupAt
          : await this.latestTrusted(trx, instanceId);
      if (!newest || !ids.includes(newest.id) || (await this.exists(trx, newest.id))) {
        if (latest !== lastBackupAt)
          await trx
            .updateTable('newestBackups')
            .set({ lastBackupAt: latest })
            .where('instanceId', '=', instanceId)
            .execute();
        continue;
      }
      const q = trx
        .selectFrom('backups')
        .select(['id', 'tenantId', 'offeringId', 'sizeBytes'])
        .where('instanceId', '=', instanceId)
        .orderBy('id', 'desc')
        .limit(1);
      // A current read on MySQL/MariaDB (the transaction's snapshot may be older than the records).
      const next = await (isMysql(trx) ? q.forUpdate() : q).executeTakeFirst();
      await this.setNewest(trx, instanceId, newest.tenantId, next, latest);
      moveNewest(moved, newest, next);
    }
    await this.addUsage(trx, moved);
    return result;
  }

  /**
   * Each instance's newest record as kept (null: none), its row in `newest_backups` locked on
   * MySQL/MariaDB, in key order: every writer of an instance's records takes this lock first, so
   * two changes of one instance's records move the kept bytes protected one after the other. The
   * row is made first if missing, as a write (a locking read of a missing key would lock the gap
   * beside it, which the first records of the instances beside it need): one row locked by its
   * key, never a range, and writers of other instances never wait for it.
   */
  private async lockNewest(trx: Trx, instances: ReadonlyMap<string, string>): Promise<Map<string, Held>> {
    const out = new Map<string, Held>();
    for (const instanceId of [...instances.keys()].sort(byKey)) {
      const tenantId = instances.get(instanceId)!;
      if (isMysql(trx))
        await upsert(
          trx,
          'newestBackups',
          { instanceId, tenantId, backupId: null, offeringId: null, sizeBytes: null, lastBackupAt: null },
          ['instanceId'],
          { instanceId: 'keep' },
        );
      // After the write above, a current read of the row it locked (not the transaction's snapshot).
      const row = await NEWEST_HELD.first(trx, { instanceId });
      out.set(instanceId, {
        newest:
          row?.backupId && row.offeringId
            ? {
                id: row.backupId,
                tenantId: row.tenantId,
                offeringId: row.offeringId,
                sizeBytes: Number(row.sizeBytes ?? 0),
              }
            : null,
        lastBackupAt: row?.lastBackupAt === null || row?.lastBackupAt === undefined ? null : Number(row.lastBackupAt),
      });
    }
    return out;
  }

  /**
   * `delta` with the bytes protected moved by `row`, just written: its instance's newest when it
   * is newer than the one held. Its instance's latest trusted time moves to the row's when later.
   */
  private async written(trx: Trx, row: BackupRow, held: Map<string, Held>, delta: UsageDelta): Promise<UsageDelta> {
    const was = held.get(row.instanceId);
    const lastBackupAt = Math.max(was?.lastBackupAt ?? -Infinity, trustedAt(row));
    if (was?.newest && was.newest.id > row.id) {
      if (lastBackupAt !== was.lastBackupAt)
        await trx.updateTable('newestBackups').set({ lastBackupAt }).where('instanceId', '=', row.instanceId).execute();
      return delta;
    }
    await this.setNewest(trx, row.instanceId, row.tenantId, row, lastBackupAt);
    return moveNewest(delta, was?.newest ?? undefined, row);
  }

  /** Keeps `newest` as the instance's newest record (undefined: it has none), and its latest trusted time. */
  private async setNewest(
    trx: Trx,
    instanceId: string,
    tenantId: string,
    newest: Newest | undefined,
    lastBackupAt: number | null,
  ): Promise<void> {
    const values = {
      tenantId: newest?.tenantId ?? tenantId,
      backupId: newest?.id ?? null,
      offeringId: newest?.offeringId ?? null,
      sizeBytes: newest === undefined ? null : Number(newest.sizeBytes),
      lastBackupAt,
    };
    await upsert(trx, 'newestBackups', { instanceId, ...values }, ['instanceId'], {
      tenantId: 'set',
      backupId: 'set',
      offeringId: 'set',
      sizeBytes: 'set',
      lastBackupAt: 'set',
    });
  }

  /** The latest trusted time of an instance's records as they stand (null: it has none). */
  private async latestTrusted(trx: Trx, instanceId: string): Promise<number | null> {
    const q = trx
      .selectFrom('backups')
      .select((eb) => eb.fn.max(trustedTime).as('at'))
      .where('instanceId', '=', instanceId);
    // A current read on MySQL/MariaDB, as the next newest's below: the transaction's snapshot may
    // be older than a record another writer made before this one took the instance's lock.
    const row = await (isMysql(trx) ? q.forUpdate() : q).executeTakeFirst();
    return row?.at === null || row?.at === undefined ? null : Number(row.at);
  }

  /**
   * The records `ids` as their tenants' usage weighs them. One counts toward the per-offering
   * quotas when not vanished and no delete is under way (none named, or the one named ended other
   * than succeeded; one named but not yet written, as claimDelete leaves it, is under way).
   */
  private async tally(trx: Trx, ids: readonly string[]): Promise<Tallied[]> {
    if (ids.length === 0) return [];
    const rows = await trx
      .selectFrom('backups')
      .select(['id', 'tenantId', 'offeringId', 'instanceId', 'sizeBytes', 'addedBytes', 'deleteTaskId'])
      .select(['createdAt', 'recordedAt'])
      .select(
        sql<number>`case when vanished_at is null and (delete_task_id is null or exists (
          select 1 from tasks where tasks.id = backups.delete_task_id and tasks.state in (${sql.join(UNDONE_DELETE)})
        )) then 1 else 0 end`.as('counts'),
      )
      .where('id', 'in', ids)
      .execute();
    return rows.map((r) => ({ ...r, counts: Number(r.counts) === 1 }));
  }

  /** Moves the tenants' usage by `delta` (in key order: two writers lock rows alike). */
  private async addUsage(trx: Trx, delta: UsageDelta): Promise<void> {
    for (const key of [...delta.keys()].sort()) {
      const row = delta.get(key)!;
      const { restorePoints, bytes, records, storedBytes, protectedBytes } = row;
      if (restorePoints === 0 && bytes === 0 && records === 0 && storedBytes === 0 && protectedBytes === 0) continue;
      await upsert(trx, 'restorePointUsage', row, ['tenantId', 'offeringId'], {
        restorePoints: 'add',
        bytes: 'add',
        records: 'add',
        storedBytes: 'add',
        protectedBytes: 'add',
      });
    }
  }
}

/** The usage of `tenant offering` in `delta`, at zero when not there yet. */
function usageOf(delta: UsageDelta, r: Pick<BackupRow, 'tenantId' | 'offeringId'>): RestorePointUsageRow {
  return (
    delta.get(`${r.tenantId} ${r.offeringId}`) ?? {
      tenantId: r.tenantId,
      offeringId: r.offeringId,
      restorePoints: 0,
      bytes: 0,
      records: 0,
      storedBytes: 0,
      protectedBytes: 0,
    }
  );
}

/** `delta` with the bytes protected moved from an instance's newest record `from` to `to` (each under its own offering). */
function moveNewest(delta: UsageDelta, from: Newest | undefined, to: Newest | undefined): UsageDelta {
  const move = (r: Newest | undefined, sign: 1 | -1) => {
    if (!r) return;
    const u = usageOf(delta, r);
    delta.set(`${r.tenantId} ${r.offeringId}`, { ...u, protectedBytes: u.protectedBytes + sign * Number(r.sizeBytes) });
  };
  move(from, -1);
  move(to, 1);
  return delta;
}

/** What going from the records as `before` to the records as `after` changed of their tenants' usage. */
function difference(before: readonly Tallied[], after: readonly Tallied[]): UsageDelta {
  const out: UsageDelta = new Map();
  const add = (r: Tallied, sign: 1 | -1) => {
    const key = `${r.tenantId} ${r.offeringId}`;
    const u = usageOf(out, r);
    const size = Number(r.sizeBytes ?? 0);
    out.set(key, {
      ...u,
      restorePoints: u.restorePoints + (r.counts ? sign : 0),
      bytes: u.bytes + (r.counts ? sign * size : 0),
      records: u.records + sign,
      storedBytes: u.storedBytes + sign * Number(r.addedBytes ?? size),
    });
  };
  for (const r of before) add(r, -1);
  for (const r of after) add(r, 1);
  return out;
}
