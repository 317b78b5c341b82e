/**
 * Pure maintenance rules: which scopes in maintenance cover a piece of work, what may start while
 * they hold, and when a scope is ready for service work. The scopes are the whole control plane,
 * one zone, and one agent.
 *
 * While a scope is in maintenance, work already running there completes; new backups there
 * (ad-hoc, scheduled, a job's remaining instances) fail at once with the maintenance message;
 * deletes, prunes and provider-schedule changes wait in the queue until it ends (they reach the
 * backup system, which is being serviced); everything else (restores, restore-volume, listings,
 * syncs, preflights, power state) keeps working. A scope is ready once none of the work it holds
 * back runs in it. A zone whose every agent able to run a backup is in maintenance (its own window
 * set through the API, or a drain an operator set on its host) stops that backup as a zone in
 * maintenance would, with an agent's message.
 */
import { HELD_BY_MAINTENANCE } from '@cairn/proto/vocabulary';
import type { TaskKind } from './task.js';
import { byKeyOf } from './key-order.js';

export const DEFAULT_MAINTENANCE_MESSAGE = 'Service provider is currently undergoing scheduled maintenance.';
export const MAX_MAINTENANCE_MESSAGE_CHARS = 1000;
/** The error code of work refused or failed because of maintenance. */
export const MAINTENANCE_CODE = 'maintenance';

export type MaintenanceScope = { kind: 'global' } | { kind: 'zone'; zone: string } | { kind: 'agent'; agentId: string };

export interface Maintenance {
  scope: MaintenanceScope;
  message: string;
}

/** Where a piece of work runs: its zone, and its agent once one is known (pinned or chosen). */
export interface WorkPlace {
  zone: string;
  agentId: string | null;
}

/** Where a backup runs, for admission: its place and the plugin that must run it. */
export interface BackupPlace extends WorkPlace {
  plugin: string;
}

/**
 * An agent as admission sees it: its zone, the plugins its last hello named, its own window set
 * through the API and its host's drain.
 */
export interface ZoneAgent {
  id: string;
  zone: string;
  plugins: readonly { name: string; capabilities: readonly string[] }[];
  /** The message of its own window set through the API (`PUT /v1/agents/{id}/maintenance`) while on; null when off. */
  apiWindow: string | null;
  /** The message of the drain an operator set on its host (`cairn-agent drain`); null when none. */
  hostDrain: string | null;
}

/** Maintenance now, as admission reads it. */
export interface ActiveMaintenance {
  /** The scopes in maintenance: those set through the API, and each agent drained on its host. */
  scopes: readonly Maintenance[];
  /**
   * The agents (enrolled, not deleted) of every zone where at least one agent is in maintenance
   * (its own API window, or drained on its host); other zones' agents are left out, since none of
   * them is.
   */
  agents: readonly ZoneAgent[];
}

/** The task kinds maintenance stops: backups fail at once. */
export const STOPPED_BY_MAINTENANCE: readonly TaskKind[] = ['backup'];
/** The task kinds maintenance holds back: backups (failed) and the rest (kept queued, see {@link waits}). */
export const HELD_KINDS: readonly TaskKind[] = HELD_BY_MAINTENANCE;

/** Whether maintenance keeps a task of `kind` queued (rather than failing it): deletes, prunes, schedule changes. */
export function waits(kind: TaskKind): boolean {
  return HELD_KINDS.includes(kind) && !STOPPED_BY_MAINTENANCE.includes(kind);
}

const NARROWNESS = { agent: 0, zone: 1, global: 2 } as const;

/** The scopes in maintenance that cover `place`, narrowest first (agent, zone, global). */
export function covering(active: readonly Maintenance[], place: WorkPlace): Maintenance[] {
  return active
    .filter((m) => {
      switch (m.scope.kind) {
        case 'global':
          return true;
        case 'zone':
          return m.scope.zone === place.zone;
        case 'agent':
          return place.agentId !== null && m.scope.agentId === place.agentId;
      }
    })
    .sort((a, b) => NARROWNESS[a.scope.kind] - NARROWNESS[b.scope.kind]);
}

export type Admission = { allowed: true } | { allowed: false; code: typeof MAINTENANCE_CODE; message: string };

/**
 * An agent's own maintenance message, or null when it is in none: its window set through the API
 * when on, else its host's drain (the order its maintenance state shows them in, see
 * {@link agentMaintenance}).
 */
function ownMaintenance(agent: ZoneAgent): string | null {
  return agent.apiWindow ?? agent.hostDrain;
}

/**
 * The agents' maintenance that keeps unpinned work of `kind` from its whole zone: the zone has
 * agents whose plugin `place.plugin` can do `kind`, and every one of them is in maintenance, in a
 * window set through the API or drained by an operator on its host (online or not: a drain holds
 * on the host until `cairn-agent undrain`), in any mix. Its message is the first such agent's, by
 * id (that agent's API window's when it has both). None when one of them is in no maintenance, or
 * when no agent there runs the plugin (the work then waits for one, as it would without any).
 */
export function zoneAgentsInMaintenance(
  agents: readonly ZoneAgent[],
  kind: TaskKind,
  place: BackupPlace,
): Maintenance | null {
  const able = agents
    .filter(
      (a) => a.zone === place.zone && a.plugins.some((p) => p.name === place.plugin && p.capabilities.includes(kind)),
    )
    .sort(byKeyOf((a) => a.id));
  const [first] = able;
  if (!first || able.some((a) => ownMaintenance(a) === null)) return null;
  return { scope: { kind: 'agent', agentId: first.id }, message: ownMaintenance(first)! };
}

/**
 * May a task of `kind` start at `place`? Only backups are stopped: by a scope covering the place,
 * or, unpinned, by its zone's every able agent being in maintenance ({@link zoneAgentsInMaintenance}).
 * The message the tenant sees is the narrowest's (an agent's own notice says more than the global
 * one; the whole zone's agents in maintenance counts as agent-wide).
 *
 * @example admission('backup', { scopes: [{ scope: { kind: 'global' }, message: 'm' }], agents: [] }, { zone: 'z', agentId: null, plugin: 'p' })
 * // → { allowed: false, code: 'maintenance', message: 'm' }
 */
export function admission(kind: TaskKind, active: ActiveMaintenance, place: BackupPlace): Admission {
  if (!STOPPED_BY_MAINTENANCE.includes(kind)) return { allowed: true };
  const drained = place.agentId === null ? zoneAgentsInMaintenance(active.agents, kind, place) : null;
  const narrowest = drained ?? covering(active.scopes, place)[0];
  return narrowest ? { allowed: false, code: MAINTENANCE_CODE, message: narrowest.message } : { allowed: true };
}

/** A scope is ready for service work once no task it holds back is running in it. */
export function isReady(runningHeld: number): boolean {
  return runningHeld === 0;
}

/**
 * The message a PUT sets: the default when none is given; a problem naming the limit when it is
 * blank or longer than 1,000 characters (counted as the user sees them, not in UTF-16 units).
 */
export function maintenanceMessage(
  input: string | undefined,
): { ok: true; message: string } | { ok: false; problem: string } {
  if (input === undefined) return { ok: true, message: DEFAULT_MAINTENANCE_MESSAGE };
  const message = input.trim();
  if (message === '') return { ok: false, problem: 'must not be blank (leave it out for the default message)' };
  const chars = [...message].length;
  if (chars > MAX_MAINTENANCE_MESSAGE_CHARS) {
    return { ok: false, problem: `must be at most ${MAX_MAINTENANCE_MESSAGE_CHARS} characters, got ${chars}` };
  }
  return { ok: true, message };
}

/** The stored key of a scope: `global`, `zone:<zone>` or `agent:<id>` (one row per scope). */
export function scopeKey(scope: MaintenanceScope): string {
  switch (scope.kind) {
    case 'global':
      return 'global';
    case 'zone':
      return `zone:${scope.zone}`;
    case 'agent':
      return `agent:${scope.agentId}`;
  }
}

/** The scope as API bodies and event data name it. */
export function scopeFields(scope: MaintenanceScope): {
  scope: MaintenanceScope['kind'];
  zone?: string;
  agentId?: string;
} {
  if (scope.kind === 'zone') return { scope: 'zone', zone: scope.zone };
  if (scope.kind === 'agent') return { scope: 'agent', agentId: scope.agentId };
  return { scope: 'global' };
}

/** The keys of every scope that could cover work at `place` (what to look up for it). */
export function scopeKeysAt(place: WorkPlace): string[] {
  const keys = [scopeKey({ kind: 'global' }), scopeKey({ kind: 'zone', zone: place.zone })];
  if (place.agentId !== null) keys.push(scopeKey({ kind: 'agent', agentId: place.agentId }));
  return keys;
}

/**
 * The drain an agent is told of (the `Drain` frame): on when any scope set through the API covers
 * it (global, its zone, itself), with the narrowest scope's message. `active` holds only the
 * scopes set through the API: the agent knows its own local drain.
 *
 * @example drainFor([{ scope: { kind: 'zone', zone: 'z' }, message: 'm' }], { id: 'a', zone: 'z' })
 * // → { enabled: true, message: 'm' }
 */
export function drainFor(
  active: readonly Maintenance[],
  agent: { id: string; zone: string },
): { enabled: boolean; message: string } {
  const [narrowest] = covering(active, { zone: agent.zone, agentId: agent.id });
  return narrowest ? { enabled: true, message: narrowest.message } : { enabled: false, message: '' };
}

/** Where an agent's maintenance comes from: the API (an agent scope), or a drain set on its host. */
export type MaintenanceSource = 'api' | 'agent';

/**
 * An agent's own maintenance as the API shows it: the scope set through the API when it is on,
 * else the drain an operator set on the host (`cairn-agent drain`), else off. Turning the API
 * scope off leaves a local drain showing.
 */
export function agentMaintenance(
  api: { enabled: boolean; message: string } | undefined,
  local: { draining: boolean; message: string | null },
): { enabled: boolean; message: string; source: MaintenanceSource } {
  if (api?.enabled) return { enabled: true, message: api.message, source: 'api' };
  if (local.draining) return { enabled: true, message: local.message || DEFAULT_MAINTENANCE_MESSAGE, source: 'agent' };
  return { enabled: false, message: api?.message ?? DEFAULT_MAINTENANCE_MESSAGE, source: 'api' };
}

/** A queued task as admission sees it: its kind, its place (zone, pinned agent) and its plugin. */
export interface QueuedWork {
  kind: TaskKind;
  zone: string;
  pinnedAgentId: string | null;
  plugin: string;
}

/**
 * Splits queued work into what may be placed, what maintenance fails at once (a backup, with the
 * message) and what it keeps queued for now (a delete, a prune, a schedule change). Unpinned work
 * has no agent yet: only global and zone scopes cover it, and a zone whose every able agent is in
 * maintenance ({@link admission}); agents in maintenance are otherwise passed over when it is
 * placed (see {@link agentTakesBackups}).
 */
export function admitQueued<T extends QueuedWork>(
  queued: readonly T[],
  active: ActiveMaintenance,
): { admitted: T[]; refused: { task: T; message: string }[]; waiting: T[] } {
  const admitted: T[] = [];
  const refused: { task: T; message: string }[] = [];
  const waiting: T[] = [];
  for (const task of queued) {
    const place = { zone: task.zone, agentId: task.pinnedAgentId, plugin: task.plugin };
    if (waits(task.kind) && covering(active.scopes, place).length > 0) {
      waiting.push(task);
      continue;
    }
    const verdict = admission(task.kind, active, place);
    if (verdict.allowed) admitted.push(task);
    else refused.push({ task, message: verdict.message });
  }
  return { admitted, refused, waiting };
}

/** Where queued work that waits out maintenance (deletes, prunes, schedule changes) is held now. */
export interface WaitingPlaces {
  kinds: readonly TaskKind[];
  global: boolean;
  zones: string[];
  /** Agents in maintenance: work pinned to them waits. */
  agentIds: string[];
}

/**
 * The places where work that waits out maintenance stays queued, for the queue to pass it over
 * (so a backlog of deletes in one zone in maintenance never fills the window other zones' work is
 * read through).
 */
export function waitingPlaces(active: readonly Maintenance[]): WaitingPlaces {
  const places: WaitingPlaces = { kinds: HELD_KINDS.filter(waits), global: false, zones: [], agentIds: [] };
  for (const m of active) {
    if (m.scope.kind === 'global') places.global = true;
    else if (m.scope.kind === 'zone') places.zones.push(m.scope.zone);
    else places.agentIds.push(m.scope.agentId);
  }
  return places;
}

/**
 * May work maintenance holds back (a backup, a delete, a prune, a schedule change) be placed on
 * this agent? Not while any scope covering it is in maintenance.
 */
export function agentTakesBackups(active: readonly Maintenance[], agent: { id: string; zone: string }): boolean {
  return covering(active, { zone: agent.zone, agentId: agent.id }).length === 0;
}
