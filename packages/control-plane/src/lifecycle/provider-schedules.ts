import type { Transaction } from 'kysely';
import { PROVIDER_SCHEDULES, providerMayRun, scheduleEnd, type InstanceSchedule } from '../domain/provider-schedule.js';
import { SLA_PRIORITY } from '../domain/schedule.js';
import { instanceTask } from '../domain/task-factory.js';
import type { Clock } from '../clock.js';
import type { AgentRepository } from '../store/agent-repository.js';
import type { CatalogRepository, Sla } from '../store/catalog-repository.js';
import { transact, type Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import { scheduleOf } from '../store/instance-schedule.js';
import type { ProviderScheduleRepository } from '../store/provider-schedule-repository.js';
import type { Database, InstanceRow, OfferingRow, TaskRow } from '../store/schema.js';
import type { TaskEndHook } from '../store/task-endings.js';
import type { TaskRepository } from '../store/task-repository.js';

type Trx = Transaction<Database>;

/**
 * Schedule tasks run in the provider's band, like SLA backups, whoever asked: one instance's
 * configure and deconfigure tasks then run in the order they were queued.
 */
const SCHEDULE_TASK_PRIORITY = SLA_PRIORITY;

const slaOf = (o: OfferingRow): Sla | null => (o.sla ? (JSON.parse(o.sla) as Sla) : null);

/** The repositories provider-side schedules write through, and their clock. */
export interface ProviderSchedulesDeps {
  db: Db;
  rows: ProviderScheduleRepository;
  catalog: CatalogRepository;
  tasks: TaskRepository;
  agents: AgentRepository;
  events: EventRepository;
  /** What time it is (the one clock server.ts makes). */
  clock: Clock;
}

/**
 * Provider-side schedules (see domain/provider-schedule.ts): queues configure-schedule and
 * deconfigure-schedule tasks when instances join or leave an SLA offering whose plugin declares
 * `provider-schedules`, or when the SLA changes, and applies their ends to the instance. Never
 * waits for a task: every change is written inside the caller's transaction, and the task's end
 * (a {@link TaskEndHook}) finishes it in the transaction that ends the task.
 */
export class ProviderSchedules {
  constructor(private readonly deps: ProviderSchedulesDeps) {}

  /**
   * Assigns `offering` to `instance`. With an SLA and a plugin that declares provider-schedules
   * (every agent of the zone that has the plugin says so), the instance waits in `configuring`
   * for the queued configure-schedule task; otherwise the assignment is complete at once.
   * `assignedAt` (the scheduler's clock) is where the RPO watch measures an instance without
   * restore points from.
   */
  async assign(
    instance: InstanceRow,
    offering: OfferingRow,
    assignedAt: number,
    now = this.deps.clock.now(),
  ): Promise<{ instance: InstanceRow; task?: TaskRow }> {
    return transact(this.deps.db, async (trx) => {
      const sla = slaOf(offering);
      const task =
        sla !== null && (await this.declares(trx, instance.zone, offering))
          ? await this.configureTask(trx, instance, offering, sla, now)
          : undefined;
      const schedule: InstanceSchedule = task
        ? { owner: null, state: 'configuring', taskId: task.id }
        : { owner: null, state: null, taskId: null };
      await this.deps.catalog.setInstanceSchedule(trx, instance.id, {
        offeringId: offering.id,
        offeringSetAt: assignedAt,
        ...schedule,
      });
      return {
        instance: { ...instance, offeringId: offering.id, offeringSetAt: assignedAt, ...rowOf(schedule) },
        ...(task ? { task } : {}),
      };
    });
  }

  /**
   * The instance leaves its offering: clears it at once and, where the provider runs (or may be
   * about to run) the schedule, queues a deconfigure-schedule task, returned.
   */
  async remove(instance: InstanceRow, now = this.deps.clock.now()): Promise<TaskRow | undefined> {
    return transact(this.deps.db, async (trx) => {
      const task = await this.deconfigureIfNeeded(trx, instance, now);
      await this.deps.catalog.setInstanceSchedule(trx, instance.id, {
        offeringId: null,
        ...(task
          ? { owner: null, state: 'deconfiguring', taskId: task.id }
          : { owner: null, state: null, taskId: null }),
      });
      return task;
    });
  }

  /** An instance was deleted: the provider drops its schedule too (the task outlives the row). */
  async deleted(instance: InstanceRow, now = this.deps.clock.now()): Promise<TaskRow | undefined> {
    return transact(this.deps.db, (trx) => this.deconfigureIfNeeded(trx, instance, now));
  }

  /**
   * An offering's SLA changed (`before` → `after`). A new SLA reaches the provider of every
   * instance it runs (or may run) the schedule of, and, where the plugin declares
   * provider-schedules, every other instance on the offering too; a failure leaves the owner as
   * it was. An SLA removed is deconfigured where the provider runs it. Returns the tasks queued.
   */
  async slaChanged(before: OfferingRow, after: OfferingRow, now = this.deps.clock.now()): Promise<TaskRow[]> {
    if (before.sla === after.sla) return [];
    return transact(this.deps.db, async (trx) => {
      const sla = slaOf(after);
      const declares = sla !== null && (await this.declares(trx, after.zone, after));
      const out: TaskRow[] = [];
      for (const instance of await this.deps.catalog.instancesOfOffering(after.id, trx)) {
        const s = scheduleOf(instance);
        if (sla === null) {
          const task = await this.deconfigureIfNeeded(trx, instance, now);
          if (!task) continue;
          await this.deps.catalog.setInstanceSchedule(trx, instance.id, {
            owner: null,
            state: 'deconfiguring',
            taskId: task.id,
          });
          out.push(task);
          continue;
        }
        if (!declares && !providerMayRun(s)) continue;
        const task = await this.configureTask(trx, instance, after, sla, now);
        // A pending assignment stays one: its failure still rolls it back.
        const state = s.state === 'configuring' ? 'configuring' : 'reconfiguring';
        await this.deps.catalog.setInstanceSchedule(trx, instance.id, { owner: s.owner, state, taskId: task.id });
        out.push(task);
      }
      return out;
    });
  }

  /** A configure-schedule or deconfigure-schedule task ended: settle its instance. */
  readonly taskEnded: TaskEndHook = async (trx, task, end, now) => {
    if (task.kind !== 'configure-schedule' && task.kind !== 'deconfigure-schedule') return;
    const instance = task.instanceId ? await this.deps.rows.instance(trx, task.instanceId) : undefined;
    const decision = scheduleEnd(instance && scheduleOf(instance), { ...task, state: end.state, output: end.output });
    const why = end.error ? `${end.error.code}: ${end.error.message}` : end.state;
    const data = {
      offeringId: task.offeringId,
      state: end.state,
      ...(end.error ? { code: end.error.code, message: end.error.message } : {}),
    };
    const name = instance ? `instance ${instance.name} (${instance.id})` : `instance ${task.instanceId ?? '?'}`;
    // A failed removal is told even when a newer request took over: the provider may still run it.
    if (task.kind === 'deconfigure-schedule' && end.state !== 'succeeded') {
      await this.event(
        trx,
        task,
        'offering.deconfigure_failed',
        now,
        data,
        `removing the schedule of ${name} from the backup system through ${task.plugin} ${end.state} (${why}): the provider may still run its schedule and make backups; remove it there`,
      );
    }
    if (!instance) return;
    const settle = (s: InstanceSchedule, offering?: null) =>
      this.deps.catalog.setInstanceSchedule(
        trx,
        instance.id,
        { ...(offering === null ? { offeringId: null } : {}), ...s },
        task.id,
      );
    switch (decision.action) {
      case 'none':
        return;
      case 'configured':
        await settle({ owner: decision.owner, state: 'configured', taskId: task.id });
        await this.event(
          trx,
          task,
          'offering.schedule_configured',
          now,
          { ...data, owner: decision.owner },
          decision.owner === 'provider'
            ? `the backup system runs the SLA schedule of ${name} itself; Cairn fires no SLA backups for it`
            : `the provider leaves the SLA schedule of ${name} to Cairn`,
        );
        return;
      case 'roll-back':
        await settle({ owner: null, state: 'failed', taskId: task.id }, null);
        await this.event(
          trx,
          task,
          'offering.assign_failed',
          now,
          data,
          `assigning offering ${task.offeringId ?? '?'} to ${name} was rolled back: the provider could not set up its schedule (${why}); the instance has no offering`,
        );
        return;
      case 'failed':
        await settle({ owner: scheduleOf(instance).owner, state: 'failed', taskId: task.id });
        if (task.kind === 'configure-schedule') {
          await this.event(
            trx,
            task,
            'offering.schedule_failed',
            now,
            data,
            `the new SLA of offering ${task.offeringId ?? '?'} did not reach the backup system for ${name} (${why}); the provider may still run the previous schedule`,
          );
        }
        return;
      case 'cleared':
        await settle({ owner: null, state: null, taskId: null });
        return;
    }
  };

  /**
   * Can the offering's provider run its SLA's schedule itself? Every agent of `zone` that has the
   * provider's plugin declares provider-schedules.
   */
  private async declares(trx: Trx, zone: string, offering: OfferingRow): Promise<boolean> {
    const provider = await this.deps.rows.providerOf(trx, offering);
    return (
      provider !== undefined && (await this.deps.agents.pluginDeclares(trx, zone, provider.plugin, PROVIDER_SCHEDULES))
    );
  }

  private async configureTask(trx: Trx, instance: InstanceRow, offering: OfferingRow, sla: Sla, now: number) {
    return this.scheduleTask(trx, 'configure-schedule', instance, offering, now, {
      instanceId: instance.id,
      instanceName: instance.name,
      locator: JSON.parse(instance.locator) as unknown,
      ...(offering.externalId ? { offeringExternalId: offering.externalId } : {}),
      sla: { cron: sla.cron, timezone: sla.timezone ?? 'UTC', keepLast: sla.keepLast },
    });
  }

  private async deconfigureIfNeeded(trx: Trx, instance: InstanceRow, now: number): Promise<TaskRow | undefined> {
    if (!instance.offeringId || !providerMayRun(scheduleOf(instance))) return undefined;
    const offering = await this.deps.rows.offering(trx, instance.offeringId);
    if (!offering) return undefined;
    return this.scheduleTask(trx, 'deconfigure-schedule', instance, offering, now, {
      instanceId: instance.id,
      locator: JSON.parse(instance.locator) as unknown,
      ...(offering.externalId ? { offeringExternalId: offering.externalId } : {}),
    });
  }

  private async scheduleTask(
    trx: Trx,
    kind: 'configure-schedule' | 'deconfigure-schedule',
    instance: InstanceRow,
    offering: OfferingRow,
    now: number,
    params: Record<string, unknown>,
  ): Promise<TaskRow> {
    const provider = await this.deps.rows.providerOf(trx, offering);
    if (!provider) throw new Error(`provider connection ${offering.providerId} of offering ${offering.id} is gone`);
    const place = { instance, offeringId: offering.id, provider };
    return this.deps.tasks.create(instanceTask(kind, place, SCHEDULE_TASK_PRIORITY, params), now, trx);
  }

  private async event(trx: Trx, task: TaskRow, type: string, now: number, data: object, message: string) {
    this.deps.events.forTask(trx, task, type, message, now, data);
  }
}

function rowOf(s: InstanceSchedule): Pick<InstanceRow, 'scheduleOwner' | 'scheduleState' | 'scheduleTaskId'> {
  return { scheduleOwner: s.owner, scheduleState: s.state, scheduleTaskId: s.taskId };
}
