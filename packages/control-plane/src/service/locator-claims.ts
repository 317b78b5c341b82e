import { isSpAdmin, type Principal } from '../domain/access.js';
import { AppError, ConflictError } from '../domain/errors.js';
import {
  effectivePolicy,
  judgeTenantLocator,
  SP_LOCATORS,
  judgeTenantNamespace,
  judgeTenantTarget,
  type Judgement,
  type RestoreTarget,
  type TenantLocators,
} from '../domain/locator-claims.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { InstanceRow, ProviderRow } from '../store/schema.js';

/** 403 `locator_not_granted`: a tenant named a locator or a restore target it was not granted. */
export class NotGrantedError extends AppError {
  override readonly name = 'NotGrantedError';
  constructor(message: string, errors: { path: string; message: string }[]) {
    super(403, 'locator_not_granted', message, errors);
  }
}

const refusal = (j: Extract<Judgement, { ok: false }>, what: string) =>
  new NotGrantedError(`${what}: ${j.path} ${j.message}`, [{ path: j.path, message: j.message }]);

/** Whether a live agent of `zone` runs `plugin` declaring `capability`. */
export type Declares = (zone: string, plugin: string, capability: string) => Promise<boolean>;

/**
 * Where the control plane enforces who may claim what on the SP's infrastructure: a locator a
 * tenant set is used through a provider connection only if that connection lets tenants claim it
 * (its `tenantLocators` policy and the roots it grants the tenant); a restore target other than
 * the instance's own likewise. The invariant holds at every change: creating an instance,
 * assigning an offering, restoring, and changing a connection's policy or a tenant's roots.
 */
export class LocatorClaims {
  constructor(
    private readonly catalog: CatalogRepository,
    private readonly declares: Declares,
  ) {}

  /** The connection's policy as claims are judged by it (`any` is `sp-only` for an `sp-locators` plugin). */
  private async policyOf(p: ProviderRow): Promise<TenantLocators> {
    const stored = p.tenantLocators as TenantLocators;
    return stored === 'any' ? effectivePolicy(stored, await this.declares(p.zone, p.plugin, SP_LOCATORS)) : stored;
  }

  private async judge(provider: ProviderRow, tenantId: string, locator: unknown, field: string): Promise<Judgement> {
    const policy = await this.policyOf(provider);
    const roots = policy === 'granted-roots' ? await this.catalog.tenantRoots(provider.id, tenantId) : [];
    return judgeTenantLocator(policy, roots, locator, field);
  }

  /** A tenant creating an instance: some connection of the zone must let it claim this locator. */
  async checkNew(zone: string, tenantId: string, locator: unknown): Promise<void> {
    let first: Extract<Judgement, { ok: false }> | undefined;
    for (const provider of await this.catalog.providersInZone(zone)) {
      const j = await this.judge(provider, tenantId, locator, 'locator');
      if (j.ok) return;
      // The most telling refusal: one that looked at granted roots.
      if (!first || provider.tenantLocators === 'granted-roots') first = j;
    }
    throw refusal(
      first ?? {
        ok: false,
        path: 'locator',
        message: `no provider connection in zone ${zone} lets tenants set locators`,
      },
      'the locator is not granted to this tenant',
    );
  }

  /** The instance's locator is about to be used through `provider` (an offering of it is assigned). */
  async checkBinding(instance: InstanceRow, provider: ProviderRow, field = 'locator'): Promise<void> {
    if (instance.locatorClaim !== 'tenant') return;
    const j = await this.judge(provider, instance.tenantId, JSON.parse(instance.locator), field);
    if (!j.ok)
      throw refusal(j, `instance ${instance.id}'s locator is not granted on provider connection ${provider.id}`);
  }

  /** A restore to `targetPath` or into `targetNamespace` (not in place) through `provider`, asked by `p` for `tenantId`. */
  async checkTarget(p: Principal, provider: ProviderRow, tenantId: string, target: RestoreTarget): Promise<void> {
    if (isSpAdmin(p)) return;
    const policy = await this.policyOf(provider);
    const judgements: Judgement[] = [];
    if (target.targetNamespace !== undefined) judgements.push(judgeTenantNamespace(policy));
    if (target.targetPath !== undefined) {
      const roots = policy === 'granted-roots' ? await this.catalog.tenantRoots(provider.id, tenantId) : [];
      judgements.push(judgeTenantTarget(policy, roots, target.targetPath));
    }
    for (const j of judgements) if (!j.ok) throw refusal(j, 'the restore target is not granted to this tenant');
  }

  /**
   * The tenant-claimed instances that would lose their grant if the connection's policy became
   * `policy` and (for `tenantId`) its roots became `roots`: refused with 409 naming them, so a
   * change never leaves an instance whose locator was never granted.
   */
  async checkChange(provider: ProviderRow, change: { policy?: TenantLocators; tenantId?: string; roots?: string[] }) {
    const policy = change.policy ?? (provider.tenantLocators as TenantLocators);
    const claims = await this.catalog.tenantClaimsOn(provider.id, change.roots ? change.tenantId : undefined);
    const grants = policy === 'granted-roots' ? await this.catalog.allTenantRoots(provider.id) : new Map();
    if (change.tenantId !== undefined && change.roots) grants.set(change.tenantId, change.roots);
    const orphans = claims.filter(
      (i) => !judgeTenantLocator(policy, grants.get(i.tenantId) ?? [], JSON.parse(i.locator), 'locator').ok,
    );
    if (orphans.length > 0)
      throw new ConflictError(
        `the change would leave instances whose tenant-set locators are no longer granted on provider connection ${provider.id}: ${orphans
          .slice(0, 10)
          .map((i) => i.id)
          .join(', ')}${orphans.length > 10 ? ` and ${orphans.length - 10} more` : ''}; remove their offering first`,
        'locator_claims_in_use',
      );
  }
}
