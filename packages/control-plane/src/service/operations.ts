import { canSee, defaultPriority, type Principal } from '../domain/access.js';
import { backupParams } from '../domain/backup-params.js';
import { ConflictError, ForbiddenError, InputError, NotFoundError, UpstreamError } from '../domain/errors.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import { isTerminal, type TaskKind, type TaskState } from '../domain/task.js';
import type { BackupRow, InstanceRow, OfferingRow, ProviderRow, TaskRow } from '../store/schema.js';
import type { BackupRepository } from '../store/backup-repository.js';
import type { RetentionRepository } from '../store/retention-repository.js';
import type { TaskRepository } from '../store/task-repository.js';

/**
 * Operations that start work: each checks policy, builds the plugin's parameters and enqueues
 * one task. The dispatcher does the rest.
 */
export class Operations {
  constructor(
    private readonly catalog: CatalogRepository,
    private readonly tasks: TaskRepository,
    private readonly backups: BackupRepository,
    private readonly retention: RetentionRepository,
    private readonly wake: () => void,
  ) {}

  async visibleInstance(p: Principal, id: string): Promise<InstanceRow> {
    const instance = await this.catalog.getInstance(id);
    if (!instance || !canSee(p, instance.tenantId)) throw new NotFoundError('instance', id);
    return instance;
  }

  async visibleBackup(p: Principal, id: string): Promise<BackupRow> {
    const backup = await this.backups.get(id);
    if (!backup || !canSee(p, backup.tenantId)) throw new NotFoundError('backup', id);
    return backup;
  }

  async visibleTask(p: Principal, id: string): Promise<TaskRow> {
    const task = await this.tasks.get(id);
    if (!task || !canSee(p, task.tenantId)) throw new NotFoundError('task', id);
    return task;
  }

  /** Ad-hoc backup: only where the instance's offering allows it. */
  async backup(p: Principal, instanceId: string, mode: 'FULL' | 'INCREMENT'): Promise<TaskRow> {
    const instance = await this.visibleInstance(p, instanceId);
    if (!instance.offeringId)
      throw new ConflictError(`instance ${instanceId} has no backup offering assigned`, 'no_offering');
    const offering = await this.catalog.getOffering(instance.offeringId);
    if (!offering)
      throw new ConflictError(
        `offering ${instance.offeringId} of instance ${instanceId} no longer exists`,
        'no_offering',
      );
    if (offering.allowAdhoc !== 1) throw new ForbiddenError(`offering ${offering.name} does not allow ad-hoc backups`);
    const provider = await this.catalog.getProvider(offering.providerId);
    if (!provider)
      throw new ConflictError(`provider connection ${offering.providerId} no longer exists`, 'no_provider');
    const parent = mode === 'INCREMENT' ? await this.backups.latest(instance.id) : undefined;
    return this.enqueue(p, 'backup', instance, offering, provider, null, backupParams(instance, offering, parent));
  }

  /**
   * A scheduled backup of `instanceId` through `offering` (its SLA or the user schedule of an
   * instance on it): the tenant's own task, at the schedule's priority. Not subject to allowAdhoc.
   */
  async scheduledBackup(instance: InstanceRow, offering: OfferingRow, priority: number): Promise<TaskRow> {
    const provider = await this.catalog.getProvider(offering.providerId);
    if (!provider)
      throw new ConflictError(`provider connection ${offering.providerId} no longer exists`, 'no_provider');
    const task = await this.tasks.create({
      kind: 'backup',
      tenantId: instance.tenantId,
      instanceId: instance.id,
      backupId: null,
      offeringId: offering.id,
      providerId: provider.id,
      plugin: provider.plugin,
      zone: instance.zone,
      pinnedAgentId: instance.agentId,
      priority,
      params: {
        instanceId: instance.id,
        instanceName: instance.name,
        locator: JSON.parse(instance.locator) as unknown,
        mode: 'FULL',
        ...(offering.externalId ? { offeringExternalId: offering.externalId } : {}),
      },
    });
    this.wake();
    return task;
  }

  /**
   * Deletes a restore point through its provider: one delete-backup task; the record goes when
   * the provider confirms. A delete already pending is answered instead of queuing another.
   */
  async deleteBackup(p: Principal, backupId: string): Promise<{ task: TaskRow; created: boolean }> {
    const backup = await this.visibleBackup(p, backupId);
    const result = await this.retention.deleteBackup(backup.id, defaultPriority(p));
    if (result.created) this.wake();
    return result;
  }

  /**
   * Removes an instance's offering. With `force`, every restore point of the instance is deleted
   * through the provider too (one task each); without it the records stay, restorable.
   */
  async removeOffering(p: Principal, instanceId: string, force: boolean): Promise<TaskRow[]> {
    const instance = await this.visibleInstance(p, instanceId);
    const tasks = force ? await this.retention.deleteAllOf(instance.id, defaultPriority(p)) : [];
    await this.catalog.setInstanceOffering(instance.id, null);
    if (tasks.length > 0) this.wake();
    return tasks;
  }

  /** In-place restore of a backup onto its own instance. */
  async restore(p: Principal, backupId: string): Promise<TaskRow> {
    const backup = await this.visibleBackup(p, backupId);
    const instance = await this.catalog.getInstance(backup.instanceId);
    if (!instance)
      throw new ConflictError(`instance ${backup.instanceId} of backup ${backupId} no longer exists`, 'no_instance');
    const offering = await this.catalog.getOffering(backup.offeringId);
    const provider = offering ? await this.catalog.getProvider(offering.providerId) : undefined;
    if (!offering || !provider)
      throw new ConflictError(`the offering or provider of backup ${backupId} no longer exists`, 'no_provider');
    return this.enqueue(p, 'restore', instance, offering, provider, backup.id, {
      instanceId: instance.id,
      locator: JSON.parse(instance.locator) as unknown,
      backupExternalId: backup.externalId,
    });
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
    const task = await this.tasks.create({
      kind,
      tenantId: instance.tenantId,
      instanceId: instance.id,
      backupId,
      offeringId: offering.id,
      providerId: provider.id,
      plugin: provider.plugin,
      zone: instance.zone,
      pinnedAgentId: instance.agentId,
      priority: defaultPriority(p),
      params,
    });
    this.wake();
    return task;
  }

  /**
   * Restores one volume of a backup and attaches it to another instance of the same tenant
   * (see docs/api.md). Both instances must be in one zone, since one agent does the work.
   */
  async restoreVolume(p: Principal, backupId: string, volume: string, targetInstanceId: string): Promise<TaskRow> {
    const backup = await this.visibleBackup(p, backupId);
    const source = await this.catalog.getInstance(backup.instanceId);
    if (!source)
      throw new ConflictError(`instance ${backup.instanceId} of backup ${backupId} no longer exists`, 'no_instance');
    const target = await this.catalog.getInstance(targetInstanceId);
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
    const offering = await this.catalog.getOffering(backup.offeringId);
    const provider = offering ? await this.catalog.getProvider(offering.providerId) : undefined;
    if (!offering || !provider) {
      throw new ConflictError(`the offering or provider of backup ${backupId} no longer exists`, 'no_provider');
    }
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
   * task goes on; its output appears on the task).
   */
  async providerOfferings(
    p: Principal,
    providerId: string,
    waitMs: number,
  ): Promise<{ task: TaskRow; items: unknown }> {
    const provider = await this.catalog.getProvider(providerId);
    if (!provider) throw new NotFoundError('provider connection', providerId);
    const task = await this.tasks.create({
      kind: 'list-offerings',
      tenantId: p.tenantId,
      instanceId: null,
      backupId: null,
      offeringId: null,
      providerId: provider.id,
      plugin: provider.plugin,
      zone: provider.zone,
      pinnedAgentId: null,
      priority: defaultPriority(p),
      params: {},
    });
    this.wake();
    const deadline = Date.now() + waitMs;
    for (;;) {
      const now = (await this.tasks.get(task.id))!;
      if (now.state === 'succeeded') {
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
      if (isTerminal(now.state as TaskState)) {
        throw new UpstreamError(
          502,
          'provider_failed',
          `listing offerings through ${provider.plugin} failed (task ${task.id}): ${now.errorCode ?? now.state}: ${now.errorMessage ?? ''}`,
        );
      }
      if (Date.now() >= deadline) {
        throw new UpstreamError(
          504,
          'provider_timeout',
          `no agent of zone ${provider.zone} answered within ${waitMs} ms; task ${task.id} stays queued`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async cancel(p: Principal, taskId: string): Promise<TaskRow> {
    await this.visibleTask(p, taskId);
    const task = await this.tasks.requestCancel(taskId);
    this.wake();
    return task;
  }
}
