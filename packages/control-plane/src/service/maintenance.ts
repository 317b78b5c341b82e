import { isSpAdmin, type Principal } from '../domain/access.js';
import { InputError, NotFoundError } from '../domain/errors.js';
import { waitingPlace, type WaiterQuota } from '../domain/hold-quota.js';
import {
  agentMaintenance,
  isReady,
  maintenanceMessage,
  type MaintenanceScope,
  type MaintenanceSource,
} from '../domain/maintenance.js';
import type { AgentRepository } from '../store/agent-repository.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { Maintenance } from '../lifecycle/maintenance.js';
import type { MaintenanceRepository } from '../store/maintenance-repository.js';
import type { MaintenanceScopeRow } from '../store/schema.js';
import { elapsedMs, type Clock } from '../clock.js';

/** A scope's state as the API answers it. */
export interface MaintenanceState {
  scope: MaintenanceScope;
  enabled: boolean;
  message: string;
  runningBackups: number;
  /** Deletes, prunes and schedule changes held by agents in the scope (maintenance holds them back too). */
  runningOther: number;
  ready: boolean;
  setBy: { tokenId: string; role: string } | null;
  setAt: number | null;
  source: MaintenanceSource;
}

export interface MaintenanceOptions {
  /** How often a `?wait=ready` request looks at the store again. */
  pollMs: number;
}

/** What the maintenance service is built from. */
export interface MaintenanceWindowsDeps {
  /** The scopes' rows: states, running counts, agents' own scopes. */
  scopes: MaintenanceRepository;
  /** What turning a scope on or off does. */
  windows: Maintenance;
  agents: AgentRepository;
  catalog: CatalogRepository;
  opts: MaintenanceOptions;
  /** The waiting room this process shares between every kind of wait, counted per tenant. */
  waiters: WaiterQuota;
  /** Told after a change commits: agents connected here get their drain, queued work moves. */
  changed: () => void;
  /** What time it is (the one clock server.ts makes). */
  clock: Clock;
}

/**
 * Maintenance windows as the API sees them: who may see and change which scope, the message rule,
 * the state with readiness, and waiting for readiness (polling the store, holding no transaction
 * or connection between looks, so it works the same with several replicas).
 */
export class MaintenanceWindows {
  constructor(private readonly deps: MaintenanceWindowsDeps) {}

  /** Turns a scope on or off (sp-admin; the caller checked the role). */
  async set(p: Principal, scope: MaintenanceScope, body: { enabled: boolean; message?: string | undefined }) {
    await this.assertExists(scope);
    const message = maintenanceMessage(body.message);
    if (!message.ok)
      throw new InputError(`message ${message.problem}`, [{ path: 'message', message: message.problem }]);
    const { changed } = await this.deps.windows.set(
      scope,
      { enabled: body.enabled, message: message.message },
      { tokenId: p.tokenId, role: p.role },
      this.deps.clock.now(),
    );
    if (changed) this.deps.changed();
    return this.state(scope);
  }

  /**
   * The scope's state for `p`: global for anyone; a zone for the sp-admin or a tenant with an
   * offering there, its own or granted (404 otherwise, like anything hidden); an agent for the sp-admin
   * (the caller checked the role).
   */
  async get(p: Principal, scope: MaintenanceScope): Promise<MaintenanceState> {
    await this.assertVisible(p, scope);
    return this.state(scope);
  }

  /**
   * Waits up to `timeoutS` for the scope to be ready (in maintenance, no backup running), looking
   * every `pollMs`; answers the state then, ready or not. A scope not in maintenance is answered
   * at once. Each wait holds a place in the tenant's share of the waiting room (429
   * too_many_waiters beyond it).
   */
  async waitReady(p: Principal, scope: MaintenanceScope, timeoutS: number): Promise<MaintenanceState> {
    await this.assertVisible(p, scope);
    const slot = waitingPlace(this.deps.waiters, p);
    try {
      const deadline = elapsedMs() + timeoutS * 1000;
      for (;;) {
        const state = await this.state(scope);
        if (state.ready || !state.enabled || elapsedMs() >= deadline) return state;
        await new Promise((resolve) => setTimeout(resolve, Math.min(this.deps.opts.pollMs, deadline - elapsedMs())));
      }
    } finally {
      slot.release();
    }
  }

  /** Each agent's own maintenance (API scope or local drain), for the agent views. */
  async ofAgents(
    agents: { id: string; draining: boolean; drainMessage: string | null }[],
  ): Promise<Map<string, { enabled: boolean; message: string; source: MaintenanceSource }>> {
    const rows = await this.deps.scopes.agentScopes(agents.map((a) => a.id));
    return new Map(
      agents.map((a) => [
        a.id,
        agentMaintenance(apiPart(rows.get(a.id)), { draining: a.draining, message: a.drainMessage }),
      ]),
    );
  }

  private async state(scope: MaintenanceScope): Promise<MaintenanceState> {
    const row = await this.deps.scopes.get(scope);
    const running = await this.deps.scopes.running(scope);
    let own = agentMaintenance(apiPart(row), { draining: false, message: null });
    if (scope.kind === 'agent') {
      const agent = await this.deps.agents.get(scope.agentId);
      own = agentMaintenance(apiPart(row), {
        draining: agent?.draining ?? false,
        message: agent?.drainMessage ?? null,
      });
    }
    return {
      scope,
      enabled: own.enabled,
      message: own.message,
      runningBackups: running.backups,
      runningOther: running.other,
      ready: own.enabled && isReady(running.backups + running.other),
      setBy: row?.setBy ? (JSON.parse(row.setBy) as { tokenId: string; role: string }) : null,
      setAt: row ? row.setAt : null,
      source: own.source,
    };
  }

  private async assertExists(scope: MaintenanceScope): Promise<void> {
    if (scope.kind === 'agent' && !(await this.deps.agents.get(scope.agentId)))
      throw new NotFoundError('agent', scope.agentId);
  }

  private async assertVisible(p: Principal, scope: MaintenanceScope): Promise<void> {
    await this.assertExists(scope);
    if (scope.kind !== 'zone' || isSpAdmin(p)) return;
    if (!(await this.deps.catalog.zoneOffered(p.tenantId, scope.zone))) throw new NotFoundError('zone', scope.zone);
  }
}

function apiPart(row: MaintenanceScopeRow | undefined) {
  return row ? { enabled: row.enabled === 1, message: row.message } : undefined;
}
