import { FailureCodes } from '@cairn/proto/vocabulary';
import { visibleRow, defaultPriority, type Principal } from '../domain/access.js';
import {
  AppError,
  ConflictError,
  ForbiddenError,
  InputError,
  MaintenanceError,
  NotFoundError,
  UnavailableError,
  UpstreamError,
} from '../domain/errors.js';
import { waitingPlace, type WaiterQuota } from '../domain/hold-quota.js';
import { parsePreflight, type PreflightReport } from '../domain/preflight.js';
import { quotaBinds } from '../domain/quotas.js';
import type { BackupStarts, QuotaRepository } from '../store/quota-repository.js';
import type { QuotaExceeded } from '../domain/quotas.js';
import { newId } from '../store/ids.js';
import { currentTransaction } from '../store/request-scope.js';
import { LocatorClaims } from './locator-claims.js';
import type { RestoreTarget } from '../domain/locator-claims.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import { isTerminal, type TaskKind, type TaskState } from '../domain/task.js';
import type { BackupRow, InstanceRow, OfferingRow, ProviderRow, TaskRow } from '../store/schema.js';
import type { AgentRepository } from '../store/agent-repository.js';
import type { BackupRepository } from '../store/backup-repository.js';
import type { StoredDrift, SyncRepository } from '../store/sync-repository.js';
import type { Retention } from '../lifecycle/retention.js';
import type { Sync } from '../lifecycle/sync.js';
import type { TaskRepository } from '../store/task-repository.js';
import { backupTask, instanceTask, providerTask, type NewTask, type ScheduleFire } from '../domain/task-factory.js';
import { elapsedMs, type Clock } from '../clock.js';
import type { MaintenanceGate } from '../lifecycle/maintenance.js';
import type { ProviderSchedules } from '../lifecycle/provider-schedules.js';

/** The plugin capability that makes an in-place restore ask for the instance's power state first. */
export const RESTORE_REQUIRES_STOPPED = 'restore-requires-stopped';

const POLL_MS = 100;

/** What the operations are built from. */
export interface OperationsDeps {
  catalog: CatalogRepository;
  tasks: TaskRepository;
  backups: BackupRepository;
  retention: Retention;
  sync: Sync;
  /** The drift reports of the syncs applied. */
  providerSyncs: SyncRepository;
  agents: AgentRepository;
  providerSchedules: ProviderSchedules;
  /** Where maintenance is asked: a backup it covers is recorded refused instead of queued. */
  maintenanceGate: MaintenanceGate;
  quotas: QuotaRepository;
  wake: () => void;
  /** The waiting room this process shares between every kind of wait, counted per tenant. */
  waiters: WaiterQuota;
  /** What time it is (the one clock server.ts makes). */
  clock: Clock;
}

/**
 * Operations that start work: each checks policy, builds the plugin's parameters and enqueues
 * one task. The dispatcher does the rest.
 */
export class Operations {
  constructor(private readonly deps: OperationsDeps) {
    this.claims = new LocatorClaims(deps.catalog, (zone, plugin, capability) =>
      deps.agents.declares(zone, plugin, capability),
    );
  }

  /** Who may claim what on the SP's infrastructure: judged before any task that uses a locator. */
  private readonly claims: LocatorClaims;

  async visibleInstance(p: Principal, id: string): Promise<InstanceRow> {
    return visibleRow(p, await this.deps.catalog.getInstance(id), 'instance', id);
  }

  async visibleBackup(p: Principal, id: string): Promise<BackupRow> {
    return visibleRow(p, await this.deps.backups.get(id), 'backup', id);
  }

  async visibleTask(p: Principal, id: string): Promise<TaskRow> {
    return visibleRow(p, await this.deps.tasks.get(id), 'task', id);
  }

  /** Ad-hoc backup: only where the instance's offering allows it. */
  async backup(p: Principal, instanceId: string, mode: 'FULL' | 'INCREMENT'): Promise<TaskRow> {
    // One read for the three (the instance, its offering, the offering's provider connection).
    const chain = await this.deps.catalog.instanceChain(instanceId);
    const instance = visibleRow(p, chain.instance, 'instance', instanceId);
    const { offering, provider } = chain;
    if (!instance.offeringId)
      throw new ConflictError(`instance ${instanceId} has no backup offering assigned`, 'no_offering');
    if (!offering)
      throw new ConflictError(
        `offering ${instance.offeringId} of instance ${instanceId} no longer exists`,
        'no_offering',
      );
    if (offering.allowAdhoc !== 1) throw new ForbiddenError(`offering ${offering.name} does not allow ad-hoc backups`);
    if (!provider)
      throw new ConflictError(`provider connection ${offering.providerId} no longer exists`, 'no_provider');
    const parent = mode === 'INCREMENT' ? await this.deps.backups.latest(instance.id) : undefined;
    const task = backupTask({ instance, offering, provider }, defaultPriority(p), parent);
    // Before anything is written: over a per-offering quota the request leaves no task behind.
    if (quotaBinds(task.priority)) await this.deps.quotas.reserveBackup(instance.tenantId, offering.id);
    const refused = await this.refusedByMaintenance(task);
    if (refused) throw new MaintenanceError(refused.errorMessage ?? '', { taskId: refused.id });
    return this.queue(task);
  }

  /**
   * A backup maintenance covers is not queued: it is recorded failed at once (code `maintenance`,
   * the scope's message), so the tenant sees why in the task and its event.
   */
  private async refusedByMaintenance(task: NewTask): Promise<TaskRow | undefined> {
    const verdict = await this.deps.maintenanceGate.admit(task);
    if (verdict.allowed) return undefined;
    return this.deps.tasks.createRefused(task, { code: verdict.code, message: verdict.message });
  }

  /**
   * Scheduled backups made together, in the transaction that claimed their fires (a batch of the
   * scheduler's): each of `targets` (instance, offering, schedule priority) may then be judged
   * against the per-offering quotas ({@link ScheduledBackups.refusal}), added, and all added
   * written at once. Locks the tenants whose quotas bind and counts their usage first.
   */
  async scheduledBackups(
    targets: readonly { instance: InstanceRow; offering: OfferingRow; priority: number }[],
  ): Promise<ScheduledBackups> {
    const bound = targets
      .filter((t) => quotaBinds(t.priority))
      .map((t) => ({ tenantId: t.instance.tenantId, offeringId: t.offering.id }));
    const trx = currentTransaction();
    if (!trx) throw new Error('scheduled backups are made in the transaction that claims their fires');
    const starts = bound.length > 0 ? await this.deps.quotas.backupStarts(bound, trx) : undefined;
    return new ScheduledBackups(starts, (tasks) => this.makeScheduled(tasks), this.deps.clock.now());
  }

  /** Writes scheduled backup tasks: a backup maintenance covers is recorded refused, the others queued. */
  private async makeScheduled(added: readonly ScheduledBackup[]): Promise<TaskRow[]> {
    if (added.length === 0) return [];
    const providers = new Map<string, ProviderRow>();
    for (const providerId of new Set(added.map((a) => a.offering.providerId))) {
      const provider = await this.deps.catalog.getProvider(providerId);
      if (!provider) throw new ConflictError(`provider connection ${providerId} no longer exists`, 'no_provider');
      providers.set(providerId, provider);
    }
    const maintenance = await this.deps.maintenanceGate.now();
    const made: TaskRow[] = [];
    const queued: NewTask[] = [];
    for (const a of added) {
      const provider = providers.get(a.offering.providerId)!;
      // Scheduled backups are FULL; not subject to allowAdhoc.
      const task: NewTask = {
        ...backupTask({ instance: a.instance, offering: a.offering, provider }, a.priority, undefined, {}, a.id),
        fire: a.fire,
      };
      const verdict = maintenance.admit(task);
      if (verdict.allowed) queued.push(task);
      else made.push(await this.deps.tasks.createRefused(task, { code: verdict.code, message: verdict.message }));
    }
    made.push(...(await this.deps.tasks.createMany(queued)));
    if (queued.length > 0) this.deps.wake();
    return made;
  }

  /**
   * Deletes a restore point through its provider: one delete-backup task; the record goes when
   * the provider confirms. A delete already pending is answered instead of queuing another.
   */
  async deleteBackup(p: Principal, backupId: string): Promise<{ task: TaskRow; created: boolean }> {
    const backup = await this.visibleBackup(p, backupId);
    const result = await this.deps.retention.deleteBackup(backup.id, defaultPriority(p));
    if (result.created) this.deps.wake();
    return result;
  }

  /**
   * Assigns an offering (checked by the caller). Where the provider may run the SLA's schedule
   * itself, the answer includes the configure-schedule task the assignment waits for.
   */
  async assignOffering(
    instance: InstanceRow,
    offering: OfferingRow,
    assignedAt: number,
  ): Promise<{ instance: InstanceRow; task?: TaskRow }> {
    const provider = await this.deps.catalog.getProvider(offering.providerId);
    if (provider) await this.claims.checkBinding(instance, provider);
    const result = await this.deps.providerSchedules.assign(instance, offering, assignedAt);
    if (result.task) this.deps.wake();
    return result;
  }

  /**
   * Removes an instance's offering: at once, and where the provider runs the schedule, with a
   * deconfigure-schedule task (first in the answer). With `force`, every restore point of the
   * instance is deleted through the provider too (one task each); without it the records stay,
   * restorable.
   */
  async removeOffering(p: Principal, instanceId: string, force: boolean): Promise<TaskRow[]> {
    const instance = await this.visibleInstance(p, instanceId);
    const deconfigure = await this.deps.providerSchedules.remove(instance);
    const deletes = force ? await this.deps.retention.deleteAllOf(instance.id, defaultPriority(p)) : [];
    const tasks = deconfigure ? [deconfigure, ...deletes] : deletes;
    if (tasks.length > 0) this.deps.wake();
    return tasks;
  }

  /** Deletes an instance (refused while it is busy or has backups); its provider schedule goes too. */
  async deleteInstance(instance: InstanceRow): Promise<TaskRow | undefined> {
    await this.deps.catalog.deleteInstance(instance.id);
    const task = await this.deps.providerSchedules.deleted(instance);
    if (task) this.deps.wake();
    return task;
  }

  /** An offering's SLA was changed: its provider schedules follow (see ProviderSchedules.slaChanged). */
  async slaChanged(before: OfferingRow, after: OfferingRow): Promise<TaskRow[]> {
    const tasks = await this.deps.providerSchedules.slaChanged(before, after);
    if (tasks.length > 0) this.deps.wake();
    return tasks;
  }

  /**
   * Lists a provider's restore points through its plugin (any agent of its zone) and compares them
   * with the records once the task ends. A sync already queued or running is answered instead.
   * `tenantId` is the SP's own tenant: a sync concerns every tenant on the provider.
   */
  async syncProvider(
    provider: ProviderRow,
    tenantId: string,
    priority: number,
    /** An operator confirms marking points vanished past the share (see holdsVanishing); a periodic sync never does. */
    confirm = false,
  ): Promise<{ task: TaskRow; created: boolean }> {
    const result = await this.deps.sync.request(provider, tenantId, priority, confirm);
    if (result.created) this.deps.wake();
    return result;
  }

  /**
   * Queues the prune of the connection's repository (the housekeeping that may lock it for long);
   * one still queued or running is answered again. Refused when the plugin does not declare
   * `prune` on the zone's agents: such a task would wait for ever.
   */
  async pruneProvider(
    provider: ProviderRow,
    tenantId: string,
    priority: number,
  ): Promise<{ task: TaskRow; created: boolean }> {
    if (!(await this.deps.agents.declares(provider.zone, provider.plugin, 'prune'))) {
      throw new ConflictError(
        `plugin ${provider.plugin} does not declare prune on the agents of zone ${provider.zone} (or none runs it): it has nothing to prune`,
        'prune_unsupported',
      );
    }
    const pending = await this.deps.tasks.pendingOfProvider(provider.id, 'prune');
    if (pending) return { task: pending, created: false };
    const task = await this.deps.tasks.create(providerTask('prune', provider, tenantId, priority, {}));
    this.deps.wake();
    return { task, created: true };
  }

  async drift(provider: ProviderRow): Promise<StoredDrift> {
    const report = await this.deps.providerSyncs.drift(provider.id);
    if (!report) {
      throw new AppError(
        404,
        'not_found',
        `provider connection ${provider.id} has no drift report yet: no sync of it has completed (POST /v1/zones/${provider.zone}/providers/${provider.id}/sync)`,
      );
    }
    return report;
  }

  /** A backup a sync found gone from its provider cannot be restored from. */
  private restorable(backup: BackupRow): void {
    if (backup.vanishedAt !== null) {
      throw new ConflictError(
        `backup ${backup.id} vanished from its provider (found gone by a sync at ${new Date(backup.vanishedAt).toISOString()})`,
        'backup_vanished',
      );
    }
  }

  /**
   * Restore of a backup onto its own instance, in place, (`targetPath`) to a path on the agent
   * host, which the task carries as `target: {path}`, or (`targetNamespace`) into another
   * Kubernetes namespace, carried as `target: {namespace}`. In place, through a plugin that declares
   * restore-requires-stopped, the task says so (`requireStopped`): `assertStoppedForRestore`
   * found the instance stopped before this request began, and the plugin checks again when the
   * restore runs, since the instance may have been started in between.
   */
  async restore(p: Principal, backupId: string, to: RestoreTarget = {}): Promise<TaskRow> {
    const { targetPath, targetNamespace } = to;
    const { backup, instance, offering, provider } = await this.restoreTarget(p, backupId);
    // The point may come from an offering (and connection) the instance has since left.
    await this.claims.checkBinding(instance, provider);
    const inPlace = targetPath === undefined && targetNamespace === undefined;
    if (!inPlace) await this.claims.checkTarget(p, provider, instance.tenantId, to);
    // A restore to another place leaves the instance alone: it need not be stopped.
    const requireStopped =
      inPlace && (await this.deps.agents.declares(instance.zone, provider.plugin, RESTORE_REQUIRES_STOPPED));
    return this.enqueue(p, 'restore', instance, offering, provider, backup.id, {
      instanceId: instance.id,
      locator: JSON.parse(instance.locator) as unknown,
      backupExternalId: backup.externalId,
      ...(targetPath !== undefined ? { target: { path: targetPath } } : {}),
      ...(targetNamespace !== undefined ? { target: { namespace: targetNamespace } } : {}),
      ...(requireStopped ? { requireStopped: true } : {}),
    });
  }

  private async restoreTarget(p: Principal, backupId: string) {
    const backup = await this.visibleBackup(p, backupId);
    this.restorable(backup);
    const instance = await this.deps.catalog.getInstance(backup.instanceId);
    if (!instance)
      throw new ConflictError(`instance ${backup.instanceId} of backup ${backupId} no longer exists`, 'no_instance');
    const offering = await this.deps.catalog.getOffering(backup.offeringId);
    const provider = offering ? await this.deps.catalog.getProvider(offering.providerId) : undefined;
    if (!offering || !provider)
      throw new ConflictError(`the offering or provider of backup ${backupId} no longer exists`, 'no_provider');
    return { backup, instance, offering, provider };
  }

  /**
   * Before an in-place restore through a plugin that declares restore-requires-stopped: asks the
   * plugin for the instance's power state (one power-state task, awaited up to `waitMs`) and
   * refuses a running instance (409 instance_running) or one whose state it cannot tell (409
   * power_state_unknown). Runs outside any request transaction, since it waits for an agent.
   * An ask whose agent went away under it (killed, or its lease ran out) is asked again while the
   * wait lasts. No agent answering in time: 504 provider_timeout naming the task, which is cancelled.
   * The wait holds a place in the tenant's share of the waiting room: beyond it, 429
   * too_many_waiters and no task is made.
   */
  async assertStoppedForRestore(p: Principal, backupId: string, waitMs: number): Promise<void> {
    const { instance, provider } = await this.restoreTarget(p, backupId);
    if (!(await this.deps.agents.declares(instance.zone, provider.plugin, RESTORE_REQUIRES_STOPPED))) return;
    const slot = waitingPlace(this.deps.waiters, p);
    try {
      await this.askStopped(p, instance, provider, waitMs);
    } finally {
      slot.release();
    }
  }

  private async askStopped(p: Principal, instance: InstanceRow, provider: ProviderRow, waitMs: number): Promise<void> {
    // Not the instance's own task: a backup running on it must not hold the question back.
    const { task, ended } = await this.askAgent(
      () =>
        this.deps.tasks.create(
          instanceTask(
            'power-state',
            { instance, offeringId: null, provider },
            defaultPriority(p),
            { instanceId: instance.id, locator: JSON.parse(instance.locator) as unknown },
            { ownsInstance: false },
          ),
        ),
      waitMs,
    );
    if (!ended) {
      // An answer after the restore was refused would be stale: nobody waits for it.
      await this.deps.tasks.requestCancel(task.id);
      this.deps.wake();
      throw new UpstreamError(
        504,
        'provider_timeout',
        `no agent of zone ${instance.zone} told the power state of instance ${instance.name} (${instance.id}) within ${waitMs} ms; task ${task.id} was cancelled`,
      );
    }
    if (!answeredByPlugin(ended)) {
      throw new UpstreamError(
        504,
        'provider_timeout',
        `no agent of zone ${instance.zone} told the power state of instance ${instance.name} (${instance.id}) within ${waitMs} ms; ${lastAsk(ended)}`,
      );
    }
    if (ended.state !== 'succeeded') {
      throw new UpstreamError(
        502,
        'provider_failed',
        `asking ${provider.plugin} for the power state of instance ${instance.id} failed (task ${ended.id}): ${ended.errorCode ?? ended.state}: ${ended.errorMessage ?? ''}`,
      );
    }
    const state = (JSON.parse(ended.output ?? '{}') as { state?: unknown }).state;
    if (state === 'running') {
      throw new ConflictError(
        `instance ${instance.name} (${instance.id}) is running; stop it before restoring it in place`,
        'instance_running',
      );
    }
    if (state !== 'stopped') {
      throw new ConflictError(
        `${provider.plugin} cannot tell whether instance ${instance.name} (${instance.id}) is stopped (task ${ended.id} answered ${JSON.stringify(state ?? null)}); it must be stopped to restore in place`,
        'power_state_unknown',
      );
    }
  }

  /**
   * Asks a plugin one question through an agent: the task `ask` makes (and commits), awaited up to
   * `waitMs`. An ask whose agent went away under it (killed, or its lease ran out) was answered by
   * nobody: it is asked again, the agent back or another of the zone, while the wait lasts.
   * Answers the last ask and how it ended (`ended` undefined: still unanswered at the end of the
   * wait; one that ended without the plugin's answer: see {@link answeredByPlugin}).
   */
  private async askAgent(ask: () => Promise<TaskRow>, waitMs: number): Promise<{ task: TaskRow; ended?: TaskRow }> {
    const deadline = elapsedMs() + waitMs;
    for (;;) {
      const task = await ask();
      this.deps.wake();
      const ended = await this.awaitTask(task.id, Math.max(0, deadline - elapsedMs()));
      if (ended && !answeredByPlugin(ended) && elapsedMs() < deadline) continue;
      return ended ? { task, ended } : { task };
    }
  }

  /** Polls a task until it ended (answered) or `waitMs` passed (undefined). */
  private async awaitTask(taskId: string, waitMs: number): Promise<TaskRow | undefined> {
    const deadline = elapsedMs() + waitMs;
    for (;;) {
      const now = (await this.deps.tasks.get(taskId))!;
      if (isTerminal(now.state as TaskState)) return now;
      if (elapsedMs() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** One task of the caller's tenant for a provider as a whole ({@link providerTask}); wakes the dispatcher. */
  private async providerTask(
    p: Principal,
    kind: TaskKind,
    provider: ProviderRow,
    params: Record<string, unknown>,
  ): Promise<TaskRow> {
    const task = await this.deps.tasks.create(providerTask(kind, provider, p.tenantId, defaultPriority(p), params));
    this.deps.wake();
    return task;
  }

  /** One task for one instance through its offering's provider; wakes the dispatcher. */
  private async enqueue(
    p: Principal,
    kind: TaskKind,
    instance: InstanceRow,
    offering: OfferingRow,
    provider: ProviderRow,
    backupId: string | null,
    params: Record<string, unknown>,
  ): Promise<TaskRow> {
    return this.queue(
      instanceTask(kind, { instance, offeringId: offering.id, provider }, defaultPriority(p), params, { backupId }),
    );
  }

  private async queue(input: NewTask): Promise<TaskRow> {
    const task = await this.deps.tasks.create(input);
    this.deps.wake();
    return task;
  }

  /**
   * Restores one volume of a backup and attaches it to another instance of the same tenant
   * (see docs/api.md). Both instances must be in one zone, since one agent does the work.
   */
  async restoreVolume(p: Principal, backupId: string, volume: string, targetInstanceId: string): Promise<TaskRow> {
    const backup = await this.visibleBackup(p, backupId);
    this.restorable(backup);
    const source = await this.deps.catalog.getInstance(backup.instanceId);
    if (!source)
      throw new ConflictError(`instance ${backup.instanceId} of backup ${backupId} no longer exists`, 'no_instance');
    const target = await this.deps.catalog.getInstance(targetInstanceId);
    if (!target || target.tenantId !== backup.tenantId) {
      throw new InputError(`instance ${targetInstanceId} does not exist or belongs to another tenant`, [
        { path: 'targetInstanceId', message: 'unknown instance of this tenant' },
      ]);
    }
    if (target.zone !== source.zone) {
      throw new InputError(`instance ${target.id} is in zone ${target.zone}, the backup in ${source.zone}`, [
        { path: 'targetInstanceId', message: 'instance in another zone' },
      ]);
    }
    const offering = await this.deps.catalog.getOffering(backup.offeringId);
    const provider = offering ? await this.deps.catalog.getProvider(offering.providerId) : undefined;
    if (!offering || !provider) {
      throw new ConflictError(`the offering or provider of backup ${backupId} no longer exists`, 'no_provider');
    }
    await this.claims.checkBinding(source, provider);
    await this.claims.checkBinding(target, provider, 'targetInstanceId');
    // The target instance is the one being changed: it is the one locked while this runs.
    return this.enqueue(p, 'restore-volume', target, offering, provider, backup.id, {
      instanceId: source.id,
      locator: JSON.parse(source.locator) as unknown,
      backupExternalId: backup.externalId,
      volume,
      targetInstanceId: target.id,
      targetLocator: JSON.parse(target.locator) as unknown,
    });
  }

  /**
   * Lists a provider's offerings live, through its plugin on an agent of its zone: one
   * list-offerings task, awaited up to `waitMs`. A slow provider gets 504 with the task id (the
   * task goes on; its output appears on the task). An ask whose agent went away under it is asked
   * again while the wait lasts ({@link askAgent}).
   */
  async providerOfferings(
    p: Principal,
    providerId: string,
    waitMs: number,
  ): Promise<{ task: TaskRow; items: unknown }> {
    const provider = await this.deps.catalog.getProvider(providerId);
    if (!provider) throw new NotFoundError('provider connection', providerId);
    const { task, ended: now } = await this.askAgent(
      () => this.providerTask(p, 'list-offerings', provider, {}),
      waitMs,
    );
    if (!now) {
      throw new UpstreamError(
        504,
        'provider_timeout',
        `no agent of zone ${provider.zone} answered within ${waitMs} ms; task ${task.id} stays queued`,
      );
    }
    if (!answeredByPlugin(now)) {
      throw new UpstreamError(
        504,
        'provider_timeout',
        `no agent of zone ${provider.zone} answered within ${waitMs} ms; ${lastAsk(now)}`,
      );
    }
    if (now.state !== 'succeeded') {
      throw new UpstreamError(
        502,
        'provider_failed',
        `listing offerings through ${provider.plugin} failed (task ${task.id}): ${now.errorCode ?? now.state}: ${now.errorMessage ?? ''}`,
      );
    }
    const items: unknown = now.output ? JSON.parse(now.output) : [];
    // Output over the stored limit arrives as a note object instead of the list.
    if (!Array.isArray(items))
      throw new UpstreamError(
        502,
        'provider_failed',
        `listing offerings through ${provider.plugin} (task ${task.id}) gave no list: ${now.output ?? ''}`,
      );
    return { task: now, items };
  }

  /**
   * Runs the provider's preflight through its plugin on a live agent of its zone (placed as a
   * sync is: any agent there that runs the plugin): one preflight task, committed, then awaited up
   * to `waitMs`. Call it outside any request transaction: the agent's answer needs the store.
   * No live agent runs the plugin: 503 no_agent; none of them can preflight: 409
   * preflight_unsupported (nothing is queued either way). The plugin failed or the task ended
   * otherwise: 502 provider_failed with its code and message. Still running at `waitMs`: the
   * task without a report (it goes on; its output carries the checks). An ask whose agent went
   * away under it is asked again while the wait lasts ({@link askAgent}); none answered: 504. With `initialise`, the
   * plugin creates a repository that does not exist yet (no other operation does).
   */
  async preflight(
    p: Principal,
    provider: ProviderRow,
    req: { locator?: unknown; initialise?: boolean },
    waitMs: number,
  ): Promise<{ task: TaskRow; report?: PreflightReport }> {
    const live = await this.deps.agents.live(provider.zone, provider.plugin, 'preflight');
    if (live.withPlugin === 0) {
      throw new UnavailableError(
        `no live agent of zone ${provider.zone} runs ${provider.plugin}; start or enroll one, then retry`,
        'no_agent',
      );
    }
    if (live.capable === 0) {
      throw new ConflictError(
        `${provider.plugin} on the agents of zone ${provider.zone} cannot preflight (its manifest does not list preflight)`,
        'preflight_unsupported',
      );
    }
    const { task, ended } = await this.askAgent(
      () =>
        this.providerTask(p, 'preflight', provider, {
          ...(req.locator === undefined ? {} : { locator: req.locator }),
          ...(req.initialise === true ? { initialise: true } : {}),
        }),
      waitMs,
    );
    if (!ended) return { task: (await this.deps.tasks.get(task.id))! };
    if (!answeredByPlugin(ended)) {
      throw new UpstreamError(
        504,
        'provider_timeout',
        `no agent of zone ${provider.zone} ran the preflight through ${provider.plugin} to its end within ${waitMs} ms; ${lastAsk(ended)}`,
      );
    }
    const failed = (detail: string) =>
      new UpstreamError(502, 'provider_failed', `preflight through ${provider.plugin} (task ${task.id}) ${detail}`);
    if (ended.state !== 'succeeded') {
      throw failed(`${ended.state}: ${ended.errorCode ?? ended.state}: ${ended.errorMessage ?? ''}`);
    }
    const parsed = parsePreflight(ended.output);
    if (!parsed.ok) throw failed(`gave no report: ${parsed.reason}`);
    return { task: ended, report: parsed.report };
  }

  async cancel(p: Principal, taskId: string): Promise<TaskRow> {
    await this.visibleTask(p, taskId);
    const task = await this.deps.tasks.requestCancel(taskId);
    this.deps.wake();
    return task;
  }
}

/** One scheduled backup of a batch: its task's id, what it backs up, and the fire that made it. */
interface ScheduledBackup {
  id: string;
  instance: InstanceRow;
  offering: OfferingRow;
  priority: number;
  fire: ScheduleFire;
}

/** Scheduled backups of one batch of fires (see Operations.scheduledBackups). */
export class ScheduledBackups {
  private readonly added: ScheduledBackup[] = [];

  constructor(
    private readonly starts: BackupStarts | undefined,
    private readonly make: (added: readonly ScheduledBackup[]) => Promise<TaskRow[]>,
    /** When the batch is made: its tasks' ids are ordered by it. */
    private readonly now: number,
  ) {}

  /**
   * Why a scheduled backup of `instance` through `offering` at `priority` may not start: a
   * per-offering quota it is at (only where the quotas bind work of that priority; the backups
   * added before count), else undefined.
   */
  refusal(instance: InstanceRow, offering: OfferingRow, priority: number): QuotaExceeded | undefined {
    return quotaBinds(priority) ? this.starts!.refusal(instance.tenantId, offering.id) : undefined;
  }

  /** Adds a backup for `fire` (written by {@link write}), counted toward the quotas; answers its task's id. */
  add(instance: InstanceRow, offering: OfferingRow, priority: number, fire: ScheduleFire): string {
    const id = newId('tsk', this.now);
    this.added.push({ id, instance, offering, priority, fire });
    if (quotaBinds(priority)) this.starts!.started(instance.tenantId, offering.id);
    return id;
  }

  /** Writes every backup added, in the claim's transaction. */
  async write(): Promise<TaskRow[]> {
    return this.added.length === 0 ? [] : this.make(this.added);
  }
}

/** A task that ended with its plugin's answer, not cut off with its agent (killed, or lease ran out). */
function answeredByPlugin(task: TaskRow): boolean {
  return task.state !== 'lost' && task.errorCode !== FailureCodes.AGENT_INTERRUPTED;
}

/** The last ask of a question nobody answered, as an error message ends. */
const lastAsk = (task: TaskRow) =>
  `the last ask, task ${task.id}, ended ${task.state}${task.errorCode ? ` ${task.errorCode}` : ''}`;
