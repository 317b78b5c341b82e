import { isSpAdmin, type Principal } from '../domain/access.js';
import { NotFoundError } from '../domain/errors.js';
import type { MaintenanceSource } from '../domain/maintenance.js';
import { isId } from '../domain/names.js';
import type { AgentRepository, AgentView, ZoneView } from '../store/agent-repository.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { Page, PageRequest } from '../store/page.js';
import type { MaintenanceWindows } from './maintenance.js';

/** An agent with its own maintenance (an API scope, or its local drain). */
export interface AgentState {
  agent: AgentView;
  maintenance: { enabled: boolean; message: string; source: MaintenanceSource };
}

/** This process's agent sessions, told of credential changes once the request has committed. */
export interface AgentSessions {
  agentRevoked(agentId: string): void;
  rotationRequested(agentId: string): void;
}

/**
 * Agents as the API sees them: enrollment, each agent with its maintenance, revoking and rotating
 * a credential (the live session told after the commit), and the zones and plugins a caller may
 * see (a tenant: the zones where it has an offering, without the agents themselves).
 */
export class Agents {
  constructor(
    private readonly agents: AgentRepository,
    private readonly catalog: CatalogRepository,
    private readonly maintenance: MaintenanceWindows,
    private readonly sessions: AgentSessions,
  ) {}

  redeemEnrollment(token: string, name: string, hostname: string) {
    return this.agents.redeemEnrollment(token, name, hostname);
  }

  createEnrollment(p: Principal, zone: string, ttlMs: number) {
    return this.agents.createEnrollment(zone, p.tokenId, ttlMs);
  }

  async list(page: PageRequest): Promise<Page<AgentState>> {
    const agents = await this.agents.list(page);
    return { items: await this.withMaintenance(agents.items), nextCursor: agents.nextCursor };
  }

  async get(id: string): Promise<AgentState> {
    const agent = isId(id) ? await this.agents.get(id) : undefined;
    if (!agent) throw new NotFoundError('agent', id);
    return (await this.withMaintenance([agent]))[0]!;
  }

  /** Revokes an agent: its credential stops working, its session closes once this commits. */
  async revoke(id: string): Promise<void> {
    if (!isId(id) || !(await this.agents.revoke(id))) throw new NotFoundError('agent', id);
    this.sessions.agentRevoked(id);
  }

  /** Rotates an agent's credential: its session offers the new one once this commits. */
  async rotate(id: string): Promise<AgentState> {
    if (!isId(id) || !(await this.agents.requestRotation(id))) throw new NotFoundError('agent', id);
    this.sessions.rotationRequested(id);
    return this.get(id);
  }

  /** Zones and their agents' states; the agents themselves (with their maintenance) for an sp-admin only. */
  async zones(p: Principal, page: PageRequest): Promise<Page<{ zone: ZoneView; agents?: AgentState[] | undefined }>> {
    const only = isSpAdmin(p) ? undefined : await this.catalog.offeredZones(p.tenantId);
    const zones = await this.agents.zones(page, only);
    if (!isSpAdmin(p)) return { items: zones.items.map((zone) => ({ zone })), nextCursor: zones.nextCursor };
    const states = await this.withMaintenance(zones.items.flatMap((z) => z.agents));
    const byId = new Map(states.map((s) => [s.agent.id, s]));
    return {
      items: zones.items.map((zone) => ({ zone, agents: zone.agents.map((a) => byId.get(a.id)!) })),
      nextCursor: zones.nextCursor,
    };
  }

  /** Plugins per zone, as the agents reported them; a tenant's: its offered zones, without agent counts. */
  async plugins(p: Principal) {
    const all = await this.agents.pluginsByZone();
    if (isSpAdmin(p)) return all;
    const zones = new Set(await this.catalog.offeredZones(p.tenantId));
    return all.filter((e) => zones.has(e.zone)).map(({ agents: _agents, ...e }) => e);
  }

  private async withMaintenance(agents: AgentView[]): Promise<AgentState[]> {
    const maintenance = await this.maintenance.ofAgents(agents);
    return agents.map((agent) => ({ agent, maintenance: maintenance.get(agent.id)! }));
  }
}
