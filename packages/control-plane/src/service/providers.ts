import { defaultPriority, type Principal } from '../domain/access.js';
import { InputError, NotFoundError } from '../domain/errors.js';
import { anyRefusal, normalizeRoot, SP_LOCATORS } from '../domain/locator-claims.js';
import { isId } from '../domain/names.js';
import type { PreflightReport } from '../domain/preflight.js';
import { providerWarnings } from '../domain/provider-warnings.js';
import type { AgentRepository } from '../store/agent-repository.js';
import type { CatalogRepository, ProviderInput } from '../store/catalog-repository.js';
import type { Page, PageRequest } from '../store/page.js';
import type { ProviderRow, TaskRow } from '../store/schema.js';
import type { StoredDrift } from '../store/sync-repository.js';
import type { TenantRepository } from '../store/tenant-repository.js';
import type { LocatorClaims } from './locator-claims.js';
import type { Operations } from './operations.js';

export type ProviderChange = Parameters<CatalogRepository['updateProvider']>[1];
/** A provider connection named by its path: its zone and id. */
export interface ProviderAt {
  zone: string;
  id: string;
}

/** What the provider-connection service is built from. */
export interface ProvidersDeps {
  tenants: TenantRepository;
  catalog: CatalogRepository;
  agents: AgentRepository;
  claims: LocatorClaims;
  operations: Operations;
}

/**
 * Provider connections as the API sees them, each named by its zone and id (another zone's is
 * unknown): create (with warnings when no agent of the zone can take its tasks), edit (the locator
 * claims it would break refused), delete, a tenant's host roots, and the work through its plugin.
 */
export class Providers {
  constructor(private readonly deps: ProvidersDeps) {}

  async create(
    input: ProviderInput,
  ): Promise<{ provider: ProviderRow; warnings: ReturnType<typeof providerWarnings> }> {
    if (input.tenantLocators === 'any') await this.refuseAny(input.zone, input.plugin);
    if (input.exportTo !== undefined && input.exportTo !== null)
      await this.checkExportTo(input.zone, undefined, input.exportTo);
    const provider = await this.deps.catalog.createProvider(input);
    return {
      provider,
      warnings: providerWarnings(input.zone, provider.plugin, await this.deps.agents.presence(input.zone)),
    };
  }

  list(zone: string, page: PageRequest): Promise<Page<ProviderRow>> {
    return this.deps.catalog.listProviders(zone, page);
  }

  async get(at: ProviderAt): Promise<ProviderRow> {
    const row = isId(at.id) ? await this.deps.catalog.getProvider(at.id) : undefined;
    if (!row || row.zone !== at.zone) throw new NotFoundError('provider connection', at.id);
    return row;
  }

  async update(at: ProviderAt, patch: ProviderChange): Promise<ProviderRow> {
    const row = await this.get(at);
    if (patch.tenantLocators === 'any') await this.refuseAny(row.zone, row.plugin);
    if (patch.exportTo !== undefined && patch.exportTo !== null)
      await this.checkExportTo(row.zone, row.id, patch.exportTo);
    if (patch.tenantLocators !== undefined) await this.deps.claims.checkChange(row, { policy: patch.tenantLocators });
    await this.deps.catalog.updateProvider(row.id, patch);
    return (await this.deps.catalog.getProvider(row.id))!;
  }

  /**
   * 400 naming `exportTo` unless it names another connection of `zone` that exports nowhere
   * itself, and `self` (being created when undefined) is no other connection's export target:
   * an export target is one hop, never a chain.
   */
  private async checkExportTo(zone: string, self: string | undefined, exportTo: string): Promise<void> {
    const refuse = (message: string): never => {
      throw new InputError(`exportTo ${message}`, [{ path: 'exportTo', message }]);
    };
    if (exportTo === self) refuse('cannot name the connection itself');
    // Read locked and current: a concurrent change of the zone's links waits for this one's commit.
    const links = await this.deps.catalog.lockExportLinks(zone);
    const target = links.find((p) => p.id === exportTo);
    if (!target) refuse(`names no provider connection of zone ${zone}: ${exportTo}`);
    if (target!.exportTo !== null)
      refuse(`names provider connection ${exportTo}, which exports into ${target!.exportTo} itself: no chains`);
    const exporter = self === undefined ? undefined : links.find((p) => p.exportTo === self)?.id;
    if (exporter)
      refuse(`cannot be set: this connection is the export target of provider connection ${exporter} (no chains)`);
  }

  /**
   * 400 naming `tenantLocators` when an agent of the zone runs `plugin` declaring `sp-locators`.
   * With none on record the policy is stored, and claims are judged as `sp-only` once one is.
   */
  private async refuseAny(zone: string, plugin: string): Promise<void> {
    if (!(await this.deps.agents.declares(zone, plugin, SP_LOCATORS))) return;
    const refusal = anyRefusal(plugin);
    throw new InputError(`tenantLocators ${refusal.message}`, [refusal]);
  }

  /** Deletes a provider connection no offering uses and no connection exports into. */
  async delete(at: ProviderAt): Promise<void> {
    const row = await this.get(at);
    await this.deps.catalog.deleteProvider(row.id, row.zone);
  }

  /** The host roots a tenant may name on the connection. */
  async tenantRoots(at: ProviderAt, tenantId: string): Promise<TenantRoots> {
    const row = await this.rootsOf(at, tenantId);
    return { providerId: row.id, tenantId, roots: await this.deps.catalog.tenantRoots(row.id, tenantId) };
  }

  /** Grants a tenant host roots (none: withdraws); refused while its instances use paths it would take away. */
  async setTenantRoots(at: ProviderAt, tenantId: string, given: readonly string[]): Promise<TenantRoots> {
    const row = await this.rootsOf(at, tenantId);
    const roots = [...new Set(given.map((r) => (normalizeRoot(r) as { root: string }).root))];
    await this.deps.claims.checkChange(row, { tenantId, roots });
    await this.deps.catalog.setTenantRoots(row.id, tenantId, roots);
    return { providerId: row.id, tenantId, roots };
  }

  async drift(at: ProviderAt): Promise<{ providerId: string; drift: StoredDrift }> {
    const row = await this.get(at);
    return { providerId: row.id, drift: await this.deps.operations.drift(row) };
  }

  /** The offerings the provider exposes, asked live through its plugin. */
  async offerings(p: Principal, at: ProviderAt, waitMs: number): Promise<{ task: TaskRow; items: unknown }> {
    return this.deps.operations.providerOfferings(p, (await this.get(at)).id, waitMs);
  }

  /** A sync of the records with what the provider lists; one queued or running is answered again. */
  async sync(p: Principal, at: ProviderAt, confirm: boolean): Promise<TaskRow> {
    const row = await this.get(at);
    return (await this.deps.operations.syncProvider(row, p.tenantId, defaultPriority(p), confirm)).task;
  }

  async prune(p: Principal, at: ProviderAt): Promise<TaskRow> {
    const row = await this.get(at);
    return (await this.deps.operations.pruneProvider(row, p.tenantId, defaultPriority(p))).task;
  }

  /** The connection's checks through its plugin on a live agent of the zone, waited for up to `waitMs`. */
  async preflight(
    p: Principal,
    at: ProviderAt,
    req: { locator?: unknown; initialise?: boolean },
    waitMs: number,
  ): Promise<{ task: TaskRow; report?: PreflightReport }> {
    return this.deps.operations.preflight(p, await this.get(at), req, waitMs);
  }

  private async rootsOf(at: ProviderAt, tenantId: string): Promise<ProviderRow> {
    const row = await this.get(at);
    if (!isId(tenantId) || !(await this.deps.tenants.get(tenantId))) throw new NotFoundError('tenant', tenantId);
    return row;
  }
}

export interface TenantRoots {
  providerId: string;
  tenantId: string;
  roots: string[];
}
