import { isSpAdmin, tenantScope, type Principal } from '../domain/access.js';
import { ConflictError, InputError, ZoneNotOfferedError } from '../domain/errors.js';
import type { AgentRepository } from '../store/agent-repository.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { Page, PageRequest } from '../store/page.js';
import type { QuotaRepository } from '../store/quota-repository.js';
import type { InstanceRow, TaskRow } from '../store/schema.js';
import type { TaskRepository } from '../store/task-repository.js';
import type { TenantRepository } from '../store/tenant-repository.js';
import type { LocatorClaims } from './locator-claims.js';
import type { Operations } from './operations.js';
import type { Schedules } from './schedules.js';
import type { Clock } from '../clock.js';

export interface NewInstance {
  name: string;
  zone: string;
  locator: unknown;
  agentId?: string | null | undefined;
  /** Only an sp-admin acting for a tenant names one; otherwise the caller's own. */
  tenantId?: string | undefined;
}

/** What the instance service is built from. */
export interface InstancesDeps {
  tenants: TenantRepository;
  catalog: CatalogRepository;
  agents: AgentRepository;
  quotas: QuotaRepository;
  tasks: TaskRepository;
  claims: LocatorClaims;
  operations: Operations;
  schedules: Schedules;
  /** What time it is: when an SLA assigned through the API starts counting. */
  clock: Clock;
}

/**
 * Instances as the API changes them: who may create one where (tenant, zone, agent, locator claim,
 * quota), assigning an offering (granted, same zone, one at a time) and deleting one.
 */
export class Instances {
  constructor(private readonly deps: InstancesDeps) {}

  async create(p: Principal, input: NewInstance): Promise<InstanceRow> {
    if (input.tenantId !== undefined && !isSpAdmin(p) && input.tenantId !== p.tenantId) {
      throw new InputError('tenantId may only be given by an sp-admin acting for a tenant', [
        { path: 'tenantId', message: 'not allowed' },
      ]);
    }
    const tenantId = input.tenantId ?? p.tenantId;
    if (!(await this.deps.tenants.get(tenantId))) {
      throw new InputError(`tenant ${tenantId} does not exist`, [{ path: 'tenantId', message: 'unknown tenant' }]);
    }
    // A tenant works only in the zones it is offered: another zone, its agents and its
    // maintenance stay hidden from it.
    if (!isSpAdmin(p) && !(await this.deps.catalog.zoneOffered(tenantId, input.zone)))
      throw new ZoneNotOfferedError(input.zone);
    if (input.agentId) {
      const agent = await this.deps.agents.get(input.agentId);
      if (!agent)
        throw new InputError(`agent ${input.agentId} does not exist`, [{ path: 'agentId', message: 'unknown agent' }]);
      if (agent.zone !== input.zone) {
        // Where another zone's agent is is the SP's to know, not a tenant's.
        const where = isSpAdmin(p) ? `is in zone ${agent.zone}, not ${input.zone}` : `is not in zone ${input.zone}`;
        throw new InputError(`agent ${agent.id} ${where}`, [{ path: 'agentId', message: 'agent in another zone' }]);
      }
    }
    // A locator is a claim on the SP's infrastructure: a tenant's is judged, an sp-admin's stands.
    const locatorClaim = isSpAdmin(p) ? 'sp' : 'tenant';
    if (locatorClaim === 'tenant') await this.deps.claims.checkNew(input.zone, tenantId, input.locator);
    await this.deps.quotas.reserve(tenantId, 'instances', 1);
    return this.deps.catalog.createInstance({
      tenantId,
      name: input.name,
      zone: input.zone,
      locator: input.locator,
      agentId: input.agentId ?? null,
      locatorClaim,
    });
  }

  /** A tenant's own instances; every tenant's for an sp-admin. `search`: `?q=`, a part of the name or the whole id. */
  list(p: Principal, page: PageRequest, search?: string): Promise<Page<InstanceRow>> {
    return this.deps.catalog.listInstances(page, tenantScope(p), search);
  }

  /** Deletes an instance the caller sees; its schedules go with it (a provider's: the task that removes it). */
  async delete(p: Principal, instanceId: string): Promise<TaskRow | undefined> {
    const instance = await this.deps.operations.visibleInstance(p, instanceId);
    const task = await this.deps.operations.deleteInstance(instance);
    await this.deps.schedules.forget(instance.id);
    return task;
  }

  /**
   * Assigns an offering granted to the instance's tenant, in its zone. The same offering again
   * changes nothing; while its provider is still setting the schedule up, the answer names the
   * same configure-schedule task again (no second one).
   */
  async assignOffering(
    p: Principal,
    instanceId: string,
    offeringId: string,
  ): Promise<{ instance: InstanceRow; task?: TaskRow | undefined }> {
    const instance = await this.deps.operations.visibleInstance(p, instanceId);
    const offering = await this.deps.catalog.getOffering(offeringId);
    if (!offering || !(await this.deps.catalog.isGranted(offering.id, instance.tenantId))) {
      throw new InputError(`offering ${offeringId} does not exist or is not granted to the instance's tenant`, [
        { path: 'offeringId', message: 'unknown or not granted' },
      ]);
    }
    if (offering.zone !== instance.zone) {
      throw new InputError(`offering ${offering.id} is in zone ${offering.zone}, the instance in ${instance.zone}`, [
        { path: 'offeringId', message: 'offering in another zone' },
      ]);
    }
    if (instance.offeringId && instance.offeringId !== offering.id) {
      throw new ConflictError(
        `instance ${instance.id} is already assigned to offering ${instance.offeringId}; remove it first`,
        'offering_assigned',
      );
    }
    const pending = instance.offeringId === offering.id && instance.scheduleState === 'configuring';
    if (instance.offeringId === offering.id && !pending) return { instance };
    // Assigned already and still waiting for the provider: the same answer again, no second task.
    if (pending) return { instance, task: await this.deps.tasks.get(instance.scheduleTaskId ?? '') };
    return this.deps.operations.assignOffering(instance, offering, this.deps.clock.now());
  }
}
