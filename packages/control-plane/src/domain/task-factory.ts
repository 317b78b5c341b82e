/**
 * The one place a task is made: every task Cairn queues (ad-hoc, scheduled and job backups,
 * restores, deletes, provider-side schedules, syncs, prunes, preflights, ...) is built here from
 * what it is about, so no caller writes a task literal of its own. Pure: the store writes what
 * these return.
 */
import { backupParams } from './backup-params.js';
import type { TaskKind } from './task.js';

/** A task to queue: what it is about, where it runs and what its plugin is handed. */
export interface NewTask {
  kind: TaskKind;
  tenantId: string;
  instanceId: string | null;
  backupId: string | null;
  offeringId: string | null;
  providerId: string;
  plugin: string;
  zone: string;
  pinnedAgentId: string | null;
  priority: number;
  params: Record<string, unknown>;
  /** A caller that must name the task before it exists (to claim a row for it) picks its id. */
  id?: string;
  /** The schedule fire that made it (a scheduled backup): said in the event that queues it. */
  fire?: ScheduleFire;
}

/** A schedule's fire: which schedule, the fire time it ran for (ISO 8601), and how many it folded. */
export interface ScheduleFire {
  schedule: string;
  fireAt: string;
  missed: number;
}

/** The instance a task works on: its tenant and zone, and the agent it is pinned to (if any). */
export interface TaskInstance {
  id: string;
  tenantId: string;
  zone: string;
  agentId: string | null;
}

/** The provider connection a task goes through. */
export interface TaskProvider {
  id: string;
  plugin: string;
}

/** Where an instance's task runs: the instance, the offering it goes through and its provider. */
export interface InstancePlace {
  instance: TaskInstance;
  offeringId: string | null;
  provider: TaskProvider;
}

export interface InstanceTaskOptions {
  id?: string;
  /** The restore point the task is about (a restore, a delete). */
  backupId?: string | null;
  /**
   * false: the task runs where the instance lives but is not the instance's own (a power-state
   * question): it holds no lock on the instance, so a backup running on it does not hold it back.
   */
  ownsInstance?: boolean;
}

/** A task for one instance, on its zone (and its pinned agent), through `place.provider`. */
export function instanceTask(
  kind: TaskKind,
  place: InstancePlace,
  priority: number,
  params: Record<string, unknown>,
  options: InstanceTaskOptions = {},
): NewTask {
  const { instance, provider } = place;
  return {
    ...(options.id === undefined ? {} : { id: options.id }),
    kind,
    tenantId: instance.tenantId,
    instanceId: options.ownsInstance === false ? null : instance.id,
    backupId: options.backupId ?? null,
    offeringId: place.offeringId,
    providerId: provider.id,
    plugin: provider.plugin,
    zone: instance.zone,
    pinnedAgentId: instance.agentId,
    priority,
    params,
  };
}

/** What a backup is made of: the instance (with its name and locator) and the offering. */
export interface BackupPlace {
  instance: TaskInstance & { name: string; locator: string };
  offering: { id: string; externalId: string | null };
  provider: TaskProvider;
}

/**
 * A backup of an instance, whoever asks (a tenant, a schedule, a job run): FULL, or INCREMENT on
 * top of `parent`; `extra` is what only some callers add (a job's id and fsFreeze).
 */
export function backupTask(
  place: BackupPlace,
  priority: number,
  parent?: { externalId: string },
  extra: Record<string, unknown> = {},
  id?: string,
): NewTask {
  const params = backupParams(place.instance, place.offering, parent, extra);
  return instanceTask('backup', { ...place, offeringId: place.offering.id }, priority, params, { id });
}

/**
 * A task for a provider as a whole (a sync, a preflight, a prune, a live offerings list): no
 * instance, on any agent of the provider's zone that runs its plugin.
 */
export function providerTask(
  kind: TaskKind,
  provider: TaskProvider & { zone: string },
  tenantId: string,
  priority: number,
  params: Record<string, unknown>,
): NewTask {
  return {
    kind,
    tenantId,
    instanceId: null,
    backupId: null,
    offeringId: null,
    providerId: provider.id,
    plugin: provider.plugin,
    zone: provider.zone,
    pinnedAgentId: null,
    priority,
    params,
  };
}
