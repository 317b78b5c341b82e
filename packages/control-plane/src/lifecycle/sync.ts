import type { Transaction } from 'kysely';
import { ConflictError } from '../domain/errors.js';
import { FailureCodes } from '@cairn/proto/vocabulary';
import {
  driftReport,
  noRepositoryNote,
  pagedListing,
  parseListing,
  planSync,
  type DriftHold,
  storedPagePoints,
  type DriftReport,
  type ListedPoint,
  type Listing,
} from '../domain/sync.js';
import { isTerminal, type TaskState } from '../domain/task.js';
import { providerTask } from '../domain/task-factory.js';
import type { Clock } from '../clock.js';
import type { BackupRepository } from '../store/backup-repository.js';
import { transact, type Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import { newId } from '../store/ids.js';
import type { Database, ProviderRow, TaskRow } from '../store/schema.js';
import type { SyncRepository } from '../store/sync-repository.js';
import type { TaskEndHook } from '../store/task-endings.js';
import type { TaskRepository } from '../store/task-repository.js';
import type { Retention } from './retention.js';

type Trx = Transaction<Database>;

/** The repositories a sync writes through, its limit and its clock. */
export interface SyncDeps {
  db: Db;
  /** The provider_syncs rows: the active sync, the hold, the drift report. */
  syncs: SyncRepository;
  backups: BackupRepository;
  tasks: TaskRepository;
  retention: Retention;
  events: EventRepository;
  /** The share of a provider's live records one sync may mark vanished (see holdsVanishing). */
  vanishShare: number;
  /** What time it is (the one clock server.ts makes). */
  clock: Clock;
}

/**
 * Provider sync: queuing a sync task (at most one queued or running per provider, a
 * compare-and-set on `provider_syncs.active_task_id`), and applying its listing to the records
 * in the transaction that applies the task's result: domain/sync.ts plans, this writes the plan
 * through the repositories (backups, tasks, events, the provider's sync row) and asks retention
 * for the deletes that follow.
 */
export class Sync {
  constructor(private readonly deps: SyncDeps) {}

  /**
   * Queues a sync of `provider` for `tenantId` (the SP's own tenant), or answers the one queued
   * or running (`created: false`). 409 `sync_pending` when a concurrent caller claimed it first.
   * `confirm`: the sync answered marks points vanished even past the share (an operator looked).
   */
  async request(
    provider: ProviderRow,
    tenantId: string,
    priority: number,
    confirm: boolean,
    now = this.deps.clock.now(),
  ): Promise<{ task: TaskRow; created: boolean }> {
    const { syncs } = this.deps;
    return transact(this.deps.db, async (trx) => {
      const row = await syncs.active(trx, provider.id);
      if (row?.activeTaskId) {
        const pending = await this.deps.tasks.get(row.activeTaskId, trx);
        if (pending && !isTerminal(pending.state as TaskState)) {
          if (confirm) await syncs.confirm(trx, provider.id, pending.id);
          return { task: pending, created: false };
        }
      }
      const id = newId('tsk', now);
      if (!(await syncs.claim(trx, provider.id, id, row ? row.activeTaskId : undefined, now))) {
        throw new ConflictError(`a sync of provider connection ${provider.id} was queued meanwhile`, 'sync_pending');
      }
      const task = await this.deps.tasks.create(
        { id, ...providerTask('sync', provider, tenantId, priority, {}) },
        now,
        trx,
      );
      if (confirm) await syncs.confirm(trx, provider.id, task.id);
      return { task, created: true };
    });
  }

  /**
   * A sync task ended (a {@link TaskEndHook}, in the transaction that ended it): on success its
   * listing is compared with the records (adopt, mark vanished, remove, queue expired deletes) and
   * the drift report replaced; any other end (failed, cancelled, lost, undeliverable) changes
   * nothing but an event. A listing that cannot be read has already failed the task, and so has a
   * paged listing with a page missing: whatever pages of it arrived are dropped unread.
   */
  readonly taskEnded: TaskEndHook = async (trx, task, end, now) => {
    if (task.kind !== 'sync') return;
    const listing = end.state === 'succeeded' ? await this.listing(trx, task, end.output) : undefined;
    await this.deps.syncs.dropPages(trx, task.id);
    if (!listing?.ok) {
      const code = end.error?.code ?? (listing ? FailureCodes.INVALID_RESULT : end.state);
      const message = end.error?.message ?? (listing && !listing.ok ? listing.reason : '');
      this.deps.events.append(trx, {
        ...this.eventBase(task, now),
        type: 'provider.sync_failed',
        message: `sync of provider connection ${task.providerId} ${end.state}: ${code}: ${message}; records unchanged`,
        data: JSON.stringify({ providerId: task.providerId, state: end.state, code }),
      });
      return;
    }
    // The row exists: it was made when this task was queued.
    const state = await this.deps.syncs.hold(trx, task.providerId);
    const confirmed = state.confirmTaskId === task.id;
    const report = await this.apply(trx, task, listing.points, now, { confirmed, heldSince: state.heldSince });
    if (end.noRepository !== undefined)
      report.noRepository = noRepositoryNote(task.zone, task.providerId, end.noRepository);
    // A held sync keeps (or starts) the hold; any other applied sync ends it.
    await this.deps.syncs.applied(trx, task.providerId, {
      taskId: task.id,
      syncedAt: now,
      report,
      heldSince: report.held?.since ?? null,
      confirmed,
    });
    if (report.held) await this.heldEvent(trx, task, report.held, now);
    const c = report.counts;
    this.deps.events.append(trx, {
      ...this.eventBase(task, now),
      type: 'provider.synced',
      message: report.noRepository
        ? `sync of provider connection ${task.providerId}: ${report.noRepository.message}`
        : `sync of provider connection ${task.providerId}: ${c.known} known, ${c.adopted} adopted, ${c.vanished} vanished, ${c.expired} expired, ${c.orphaned} orphaned, ${c.removed} removed`,
      data: JSON.stringify({
        providerId: task.providerId,
        counts: c,
        ...(report.noRepository ? { noRepository: true } : {}),
      }),
    });
  };

  /** The listing a successful sync's output holds, or the one its stored pages hold, in page order. */
  private async listing(trx: Trx, task: TaskRow, output: string | null): Promise<Listing> {
    if (!pagedListing(output)) return parseListing(output);
    const points: ListedPoint[] = [];
    for await (const body of this.deps.syncs.pageBodies(trx, task.id, task.attempt)) {
      const page = storedPagePoints(body, points.length);
      if (!page.ok) return page;
      for (const p of page.points) points.push(p);
    }
    return { ok: true, points };
  }

  private async apply(
    trx: Trx,
    task: TaskRow,
    points: ListedPoint[],
    now: number,
    hold: { confirmed: boolean; heldSince: number | null },
  ): Promise<DriftReport> {
    const records = await this.deps.backups.ofProvider(trx, task.providerId);
    // Only instances bound to this connection may own its points (see SyncInstance).
    const instances = await this.deps.syncs.boundInstances(trx, task.providerId, task.zone);
    const busy = await this.deps.syncs.busyInstances(trx, task.providerId);
    const listedAt = task.dispatchedAt ?? task.createdAt;
    const plan = planSync({
      points,
      records: records.map((r) => ({
        id: r.id,
        externalId: r.externalId,
        // When it was written: the provider's time of an adopted point may lie in the future, and
        // a backup's recordedAt past a clock stepped back; the earlier of the two is never late.
        createdAt: Math.min(r.createdAt, r.recordedAt),
        vanishedAt: r.vanishedAt,
        deleteAsked: r.deleteTaskId !== null,
      })),
      instances: instances.map((i) => ({ id: i.id, busy: busy.has(i.id) })),
      // A record written after the agent began listing may be missing from the listing by timing alone.
      listedAt,
      // A point deleted after the listing was taken: its record is gone, and it is not adopted back.
      deletedSinceListed: await this.deps.syncs.deletedSince(trx, task.providerId, listedAt),
      vanishing: { share: this.deps.vanishShare, confirmed: hold.confirmed },
    });
    const byId = new Map(records.map((r) => [r.id, r]));
    const event = (
      tenantId: string,
      instanceId: string,
      type: string,
      message: string,
      backupId: string,
      extra: Record<string, unknown> = {},
    ) =>
      this.deps.events.append(trx, {
        ...this.eventBase(task, now),
        tenantId,
        instanceId,
        type,
        message,
        data: JSON.stringify({ backupId, providerId: task.providerId, ...extra }),
      });

    await this.deps.backups.setVanished(trx, plan.reappeared, null);
    await this.deps.backups.setVanished(trx, plan.newlyVanished, now);
    for (const id of plan.newlyVanished) {
      const r = byId.get(id)!;
      event(
        r.tenantId,
        r.instanceId,
        'backup.vanished',
        `restore point ${r.externalId} of backup ${id} is gone from its provider; the record stays, marked`,
        id,
      );
    }
    const removed: string[] = [];
    for (const id of plan.removed) {
      const r = byId.get(id)!;
      if (!(await this.deps.backups.removeGone(trx, id))) continue;
      removed.push(id);
      event(
        r.tenantId,
        r.instanceId,
        'backup.deleted',
        `backup ${id} deleted: its provider no longer lists it and a delete was asked for`,
        id,
      );
    }

    // Parents by external id among each instance's records, adopted ones included (oldest first).
    const owned = new Map<string, Map<string, string>>();
    const ownedBy = (instanceId: string) => {
      let m = owned.get(instanceId);
      if (!m) owned.set(instanceId, (m = new Map()));
      return m;
    };
    for (const r of records) if (!removed.includes(r.id)) ownedBy(r.instanceId).set(r.externalId, r.id);
    const instanceById = new Map(instances.map((i) => [i.id, i]));
    const adopted: string[] = [];
    for (const { point, instanceId } of plan.adopt) {
      const instance = instanceById.get(instanceId)!;
      const parents = ownedBy(instanceId);
      const { row, futureDated } = await this.deps.backups.adopt(
        trx,
        { id: instance.id, tenantId: instance.tenantId, name: instance.name, offeringId: instance.offeringId! },
        {
          externalId: point.externalId,
          createdAt: point.createdAt,
          sizeBytes: point.sizeBytes,
          mode: point.mode ?? (point.parentExternalId ? 'INCREMENT' : 'FULL'),
          parentId: point.parentExternalId ? (parents.get(point.parentExternalId) ?? null) : null,
          expiresAt: point.expiresAt,
        },
        now,
      );
      parents.set(point.externalId, row.id);
      adopted.push(row.id);
      event(
        instance.tenantId,
        instance.id,
        'backup.adopted',
        `restore point ${point.externalId} found on the provider by a sync, recorded as backup ${row.id}`,
        row.id,
      );
      if (futureDated) {
        const providerTime = new Date(point.createdAt).toISOString();
        event(
          instance.tenantId,
          instance.id,
          'backup.future_dated',
          `restore point ${point.externalId} (backup ${row.id} of instance ${instance.id}) is dated ${providerTime} by its provider, ahead of the control plane's clock; it ranks below the instance's backups for keep-last`,
          row.id,
          { providerTime },
        );
      }
    }

    // Retention over what is now recorded and still listed: keep-last, expiry, failed deletes again.
    const vanished = new Set(plan.vanished);
    const deletable = new Set([...plan.known, ...adopted].filter((id) => !vanished.has(id)));
    const expired: string[] = [];
    for (const instanceId of new Set([...records.map((r) => r.instanceId), ...plan.adopt.map((a) => a.instanceId)])) {
      expired.push(...(await this.deps.retention.afterSync(trx, task, instanceId, deletable, now)));
    }
    return driftReport({
      known: plan.known,
      adopted,
      vanished: plan.vanished,
      expired,
      orphaned: plan.orphaned,
      removed,
      deferred: plan.deferred,
      held: plan.held && {
        ...plan.held,
        since: hold.heldSince ?? now,
        confirm: `POST /v1/zones/${task.zone}/providers/${task.providerId}/sync?confirm=true`,
      },
    });
  }

  /** A held sync concerns every tenant of the provider: the SP's event (the task is the SP's). */
  private async heldEvent(trx: Trx, task: TaskRow, held: DriftHold, now: number): Promise<void> {
    this.deps.events.append(trx, {
      ...this.eventBase(task, now),
      type: 'provider.sync_held',
      message: `sync of provider connection ${task.providerId} would mark ${held.vanishing} of its ${held.of} restore points vanished at once, more than CAIRN_SYNC_VANISH_SHARE=${this.deps.vanishShare} allows; none was marked. If the provider's storage is mounted and they are really gone, confirm with ${held.confirm}`,
      data: JSON.stringify({
        providerId: task.providerId,
        vanishing: held.vanishing,
        of: held.of,
        since: new Date(held.since).toISOString(),
        confirm: held.confirm,
      }),
    });
  }

  private eventBase(task: TaskRow, now: number) {
    return {
      tenantId: task.tenantId,
      at: now,
      taskId: task.id,
      instanceId: null,
      jobId: null,
      agentId: task.agentId,
      sourceAgentId: null,
      sourceSeq: null,
    };
  }
}
