import type { Transaction } from 'kysely';
import { ConflictError } from '../domain/errors.js';
import { backupsToDelete, newestFirst } from '../domain/retention.js';
import { isTerminal, type TaskState } from '../domain/task.js';
import { instanceTask } from '../domain/task-factory.js';
import type { Clock } from '../clock.js';
import type { AgentRepository } from '../store/agent-repository.js';
import type { BackupRepository } from '../store/backup-repository.js';
import { transact, type Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import { newId } from '../store/ids.js';
import type { JobRepository } from '../store/job-repository.js';
import type { ScheduleRepository } from '../store/schedule-repository.js';
import type { BackupRow, Database, TaskRow } from '../store/schema.js';
import type { TaskEndHook } from '../store/task-endings.js';
import type { TaskRepository } from '../store/task-repository.js';

type Trx = Transaction<Database>;

/**
 * Task ids in ascending order: the queue runs one instance's tasks in id order, and ids made in
 * one millisecond are otherwise random, so this is what makes children be deleted first.
 */
function taskIds(n: number, now: number): string[] {
  return Array.from({ length: n }, () => newId('tsk', now)).sort();
}

/** The plugin capability that lets retention delete the base of a kept increment. */
export const HANDLES_CHAINS = 'handles-chains';

/** The repositories retention reads and writes through, and its clock. */
export interface RetentionDeps {
  db: Db;
  backups: BackupRepository;
  tasks: TaskRepository;
  agents: AgentRepository;
  events: EventRepository;
  /** The keep-last of an instance: its user schedule's, else its SLA's. */
  schedules: ScheduleRepository;
  /** The keep-last of the backup job that made a task, if any: it wins for that job's backups. */
  jobs: JobRepository;
  /** What time it is (the one clock server.ts makes). */
  clock: Clock;
}

/**
 * Deleting restore points through the provider: keep-last retention after each successful
 * backup and each sync, and explicit deletes. domain/retention.ts decides which points go; a
 * record goes only when its delete-backup task succeeds, and at most one such task is pending per
 * record (a compare-and-set on `backups.delete_task_id`). Writes go through the repositories
 * (tasks, backups, events), inside the caller's transaction.
 */
export class Retention {
  constructor(private readonly deps: RetentionDeps) {}

  /** DELETE /v1/backups/{id}: the pending delete task of the backup, or a new one. */
  async deleteBackup(
    backupId: string,
    priority: number,
    now = this.deps.clock.now(),
  ): Promise<{ task: TaskRow; created: boolean }> {
    return transact(this.deps.db, async (trx) => {
      const backup = await this.deps.backups.get(backupId, trx);
      if (!backup) throw new ConflictError(`backup ${backupId} was deleted meanwhile`, 'backup_gone');
      return (await this.requestDelete(trx, backup, priority, now, 'request'))!;
    });
  }

  /** Every restore point of an instance, through the provider (removing its offering by force). */
  async deleteAllOf(instanceId: string, priority: number, now = this.deps.clock.now()): Promise<TaskRow[]> {
    return transact(this.deps.db, async (trx) => {
      const records = await this.deps.backups.ofInstance(trx, instanceId);
      const out: TaskRow[] = [];
      // Children before parents, as retention does: a provider may refuse a base still in use.
      const ordered = records.sort(newestFirst);
      const ids = taskIds(ordered.length, now);
      for (const [i, b] of ordered.entries()) {
        out.push((await this.requestDelete(trx, b, priority, now, 'request', ids[i]))!.task);
      }
      return out;
    });
  }

  /** After a backup task succeeded (its record written in `trx`): queue the deletes keep-last asks for. */
  async afterBackup(trx: Trx, task: TaskRow, now: number): Promise<void> {
    if (!task.instanceId) return;
    await this.queueDoomed(trx, task, task.instanceId, { now: undefined, deletable: () => true }, now);
  }

  /**
   * After a sync of `task.providerId` (in its transaction): the deletes keep-last and expiry ask
   * for among the instance's records on that provider that are still listed and have no delete
   * pending. A failed delete no longer counts as pending, so this is what retries it. Answers the
   * ids of the records a delete was queued for.
   */
  async afterSync(trx: Trx, task: TaskRow, instanceId: string, deletable: Set<string>, now: number): Promise<string[]> {
    return this.queueDoomed(trx, task, instanceId, { now, deletable: (b) => deletable.has(b.id) }, now);
  }

  /**
   * Queues a delete for each record of the instance retention dooms, children first. Vanished
   * records are not weighed: a point the provider no longer has must not take a restorable one's
   * place among the kept ones.
   */
  private async queueDoomed(
    trx: Trx,
    task: TaskRow,
    instanceId: string,
    opts: { now: number | undefined; deletable: (b: BackupRow) => boolean },
    now: number,
  ): Promise<string[]> {
    // A job's backup keeps what its job says; otherwise the user schedule's, else the SLA's.
    const keepLast =
      (instanceId === task.instanceId && task.kind === 'backup' ? await this.deps.jobs.keepLastOf(trx, task) : null) ??
      (await this.deps.schedules.keepLastFor(instanceId, trx));
    // Without a keep-last, only expiry can doom a record, and only a sync (which passes `now`) weighs it.
    if (keepLast === null && opts.now === undefined) return [];
    const records = (await this.deps.backups.ofInstance(trx, instanceId)).filter((b) => b.vanishedAt === null);
    if (keepLast === null && !records.some((b) => b.expiresAt !== null)) return [];
    if (keepLast !== null && records.length <= keepLast && opts.now === undefined) return [];
    const handlesChains = await this.deps.agents.pluginDeclares(trx, task.zone, task.plugin, HANDLES_CHAINS);
    const byId = new Map(records.map((b) => [b.id, b]));
    const doomed = backupsToDelete(records, {
      keepLast,
      handlesChains,
      ...(opts.now !== undefined ? { now: opts.now } : {}),
    }).filter((id) => opts.deletable(byId.get(id)!));
    const ids = taskIds(doomed.length, now);
    const queued: string[] = [];
    for (const [i, id] of doomed.entries()) {
      const r = await this.requestDelete(trx, byId.get(id)!, task.priority, now, 'retention', ids[i]);
      if (r?.created) queued.push(id);
    }
    return queued;
  }

  /**
   * Queues a delete-backup task for `backup` through its own offering's provider, or answers the
   * one already pending (`created: false`). Refuses (409) when its offering, provider or instance
   * no longer exists, or when a concurrent delete claimed it first.
   */
  private async requestDelete(
    trx: Trx,
    backup: BackupRow,
    priority: number,
    now: number,
    reason: 'retention' | 'request',
    id = newId('tsk', now),
  ): Promise<{ task: TaskRow; created: boolean } | undefined> {
    if (backup.deleteTaskId) {
      const pending = await this.deps.tasks.get(backup.deleteTaskId, trx);
      if (pending && !isTerminal(pending.state as TaskState)) return { task: pending, created: false };
    }
    const target = await this.deps.backups.deleteTarget(trx, backup);
    if (!target) {
      if (reason === 'retention') return undefined;
      throw new ConflictError(
        `the offering, provider or instance of backup ${backup.id} no longer exists`,
        'no_provider',
      );
    }
    if (!(await this.deps.backups.claimDelete(trx, backup.id, id, backup.deleteTaskId))) {
      if (reason === 'retention') return undefined;
      throw new ConflictError(`backup ${backup.id} is being deleted by another request`, 'delete_pending');
    }
    const place = {
      instance: { id: backup.instanceId, tenantId: backup.tenantId, zone: target.zone, agentId: target.agentId },
      offeringId: backup.offeringId,
      provider: { id: target.providerId, plugin: target.plugin },
    };
    // The instance goes with the delete so a plugin can refuse a point of another instance.
    const params = {
      backupExternalId: backup.externalId,
      locator: JSON.parse(target.locator) as unknown,
      instanceId: backup.instanceId,
    };
    const task = await this.deps.tasks.create(
      instanceTask('delete-backup', place, priority, params, { id, backupId: backup.id }),
      now,
      trx,
    );
    return { task, created: true };
  }

  /** A delete-backup task ended (a {@link TaskEndHook}): the record goes on success; otherwise it stays, with an event. */
  readonly deleteEnded: TaskEndHook = async (trx, task, { state, error }, now) => {
    if (task.kind !== 'delete-backup' || !task.backupId) return;
    if (state === 'succeeded') {
      if (await this.deps.backups.removeDeleted(trx, task.backupId, task.id)) {
        this.deps.events.forTask(trx, task, 'backup.deleted', `backup ${task.backupId} deleted by the provider`, now);
      }
      return;
    }
    // A sync may have removed the record meanwhile (the provider no longer had the point).
    if (!(await this.deps.backups.exists(trx, task.backupId))) return;
    await this.deps.backups.deleteUndone(trx, task.backupId, task.id);
    this.deps.events.append(trx, {
      tenantId: task.tenantId,
      type: 'backup.delete_failed',
      at: now,
      message: `deleting backup ${task.backupId} through ${task.plugin} ${state}${error ? `: ${error.code}: ${error.message}` : ''}; the record stays`,
      taskId: task.id,
      instanceId: task.instanceId,
      jobId: null,
      agentId: task.agentId,
      data: JSON.stringify({ backupId: task.backupId, state, ...(error ? { code: error.code } : {}) }),
      sourceAgentId: null,
      sourceSeq: null,
    });
  };
}
