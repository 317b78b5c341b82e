import type { Transaction } from 'kysely';
import { backupName } from '../domain/backup-name.js';
import type { Db } from './db.js';
import { newId } from './ids.js';
import { decodeCursor, pageOf, type Page, type PageRequest } from './page.js';
import type { BackupRow, Database, TaskRow } from './schema.js';

type Trx = Transaction<Database>;

/** Restore points: written when a backup task succeeds, read by the API and the next incremental. */
export class BackupRepository {
  constructor(
    private readonly db: Db,
    /**
     * When a restore point was made, by the scheduler's clock (the system clock outside tests):
     * the RPO watch compares its age with that clock's now.
     */
    private readonly clock: () => number = Date.now,
  ) {}

  async get(id: string): Promise<BackupRow | undefined> {
    return this.db.selectFrom('backups').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async list(page: PageRequest, filter: { tenantId?: string; instanceId?: string }): Promise<Page<BackupRow>> {
    const before = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('backups')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(page.limit + 1);
    if (before) q = q.where('id', '<', before);
    if (filter.tenantId !== undefined) q = q.where('tenantId', '=', filter.tenantId);
    if (filter.instanceId !== undefined) q = q.where('instanceId', '=', filter.instanceId);
    return pageOf(await q.execute(), page.limit);
  }

  /** The newest backup of an instance (parent of the next incremental). */
  async latest(instanceId: string): Promise<BackupRow | undefined> {
    return this.db
      .selectFrom('backups')
      .selectAll()
      .where('instanceId', '=', instanceId)
      .orderBy('id', 'desc')
      .executeTakeFirst();
  }

  /** One backup record per task: the unique task_id makes a second insert impossible. */
  async recordFromTask(
    trx: Trx,
    task: TaskRow,
    meta: { externalId: string; sizeBytes: number; addedBytes: number; mode: string; parentExternalId: string },
    now: number,
  ): Promise<void> {
    if (!task.instanceId || !task.offeringId) return;
    const instance = await trx
      .selectFrom('instances')
      .select(['name'])
      .where('id', '=', task.instanceId)
      .executeTakeFirst();
    const parent = meta.parentExternalId
      ? await trx
          .selectFrom('backups')
          .select('id')
          .where('instanceId', '=', task.instanceId)
          .where('externalId', '=', meta.parentExternalId)
          .executeTakeFirst()
      : undefined;
    const madeAt = this.clock();
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
    };
    await trx.insertInto('backups').values(row).execute();
    await trx.updateTable('tasks').set({ backupId: row.id }).where('id', '=', task.id).execute();
  }

  /** Every record of an instance, as retention weighs them (and the delete under way, if any). */
  async ofInstance(trx: Trx, instanceId: string): Promise<BackupRow[]> {
    return trx.selectFrom('backups').selectAll().where('instanceId', '=', instanceId).execute();
  }

  /**
   * Marks `backupId` as being deleted by `taskId`, only if it still names `expected` (null, or a
   * task that ended): a compare-and-set, so of two concurrent deleters one wins.
   */
  async claimDelete(trx: Trx, backupId: string, taskId: string, expected: string | null): Promise<boolean> {
    const r = await trx
      .updateTable('backups')
      .set({ deleteTaskId: taskId })
      .where('id', '=', backupId)
      .where((eb) => (expected === null ? eb('deleteTaskId', 'is', null) : eb('deleteTaskId', '=', expected)))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The provider confirmed the delete: the record goes (only the claiming task can remove it). */
  async removeDeleted(trx: Trx, backupId: string, taskId: string): Promise<boolean> {
    const r = await trx
      .deleteFrom('backups')
      .where('id', '=', backupId)
      .where('deleteTaskId', '=', taskId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }
}
