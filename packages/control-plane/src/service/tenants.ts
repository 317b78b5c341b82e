import { isSpAdmin, type Principal, type Role } from '../domain/access.js';
import { ForbiddenError, NotFoundError } from '../domain/errors.js';
import { isId } from '../domain/names.js';
import type { QuotaName } from '../domain/quotas.js';
import type { Page, PageRequest } from '../store/page.js';
import type { QuotaRepository } from '../store/quota-repository.js';
import type { TenantRow } from '../store/schema.js';
import type { TenantRepository } from '../store/tenant-repository.js';
import { afterCommit } from '../store/request-scope.js';
import type { PrincipalCache } from './principal-cache.js';

/** What a tenant's quotas view is made of: its overrides, its usage, and per offering. */
export interface TenantQuotas {
  overrides: Awaited<ReturnType<QuotaRepository['overrides']>>;
  used: Record<QuotaName, number>;
  byOffering: Awaited<ReturnType<QuotaRepository['usageByOffering']>>;
}

/**
 * Tenants as the API sees them: who sees one (an sp-admin, or its own members), its quotas, and
 * its API tokens (who may issue, list and revoke which, the service provider tenant's being the
 * sp-admins' alone).
 */
export class Tenants {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly quotas: QuotaRepository,
    /** Who the bearer tokens are, cached within the revocation bound. */
    private readonly principals: PrincipalCache,
  ) {}

  /** Who a bearer token is (undefined: no such token, or revoked on any replica more than the bound ago). */
  principalForToken(token: string): Promise<Principal | undefined> {
    return this.principals.principalForToken(token);
  }

  create(name: string): Promise<TenantRow> {
    return this.tenants.create(name);
  }

  list(page: PageRequest): Promise<Page<TenantRow>> {
    return this.tenants.list(page);
  }

  /** A tenant the caller may see: any for an sp-admin, its own otherwise. */
  async visible(p: Principal, id: string): Promise<TenantRow> {
    const tenant = isId(id) ? await this.tenants.get(id) : undefined;
    if (!tenant || (!isSpAdmin(p) && p.tenantId !== tenant.id)) throw new NotFoundError('tenant', id);
    return tenant;
  }

  async quotasOf(p: Principal, id: string): Promise<TenantQuotas> {
    return this.quotaFigures((await this.visible(p, id)).id);
  }

  /** Sets a tenant's count quotas (null: back to the default); answers them as they now are. */
  async setQuotas(p: Principal, id: string, limits: Partial<Record<QuotaName, number | null>>): Promise<TenantQuotas> {
    const tenant = await this.visible(p, id);
    await this.quotas.set(tenant.id, limits);
    return this.quotaFigures(tenant.id);
  }

  /** Issues an API token (tenant-admins and sp-admins; sp-admin tokens only in the provider tenant, by an sp-admin). */
  async issueToken(p: Principal, id: string, input: { role: Role; name: string }) {
    const tenant = await this.visible(p, id);
    if (!isSpAdmin(p) && p.role !== 'tenant-admin') throw new ForbiddenError('only a tenant-admin may issue tokens');
    const providerTenant = await this.tenants.ensureProviderTenant();
    if (input.role === 'sp-admin' && (tenant.id !== providerTenant || !isSpAdmin(p))) {
      throw new ForbiddenError(
        'sp-admin tokens exist only in the service provider tenant and only an sp-admin issues them',
      );
    }
    if (input.role !== 'sp-admin' && tenant.id === providerTenant && !isSpAdmin(p)) {
      throw new ForbiddenError('only an sp-admin issues tokens of the service provider tenant');
    }
    return this.tenants.createToken(tenant.id, input.role, input.name);
  }

  /** A tenant's tokens, a page at a time: who may see them is checked first (403/404), before any page is read. */
  async tokens(p: Principal, id: string) {
    const tenant = await this.manageable(p, id);
    return (page: PageRequest) => this.tenants.listTokens(tenant.id, page);
  }

  async revokeToken(p: Principal, id: string, tokenId: string): Promise<void> {
    const tenant = await this.manageable(p, id);
    const revoked = isId(tokenId) && (await this.tenants.revokeToken(tenant.id, tokenId));
    if (!revoked) throw new NotFoundError('token', tokenId);
    // Once committed: a lookup meanwhile would read the token as it was and cache it again.
    afterCommit(() => this.principals.forget());
  }

  /**
   * Who may see and revoke a tenant's tokens: an sp-admin, or a tenant-admin of that tenant
   * (never of the provider tenant, whose tokens only sp-admins manage, as they alone issue them).
   */
  private async manageable(p: Principal, id: string): Promise<TenantRow> {
    const tenant = await this.visible(p, id);
    if (isSpAdmin(p)) return tenant;
    if (p.role !== 'tenant-admin') throw new ForbiddenError('only a tenant-admin may list or revoke tokens');
    if (tenant.id === (await this.tenants.ensureProviderTenant()))
      throw new ForbiddenError('only an sp-admin manages tokens of the service provider tenant');
    return tenant;
  }

  private async quotaFigures(tenantId: string): Promise<TenantQuotas> {
    const overrides = await this.quotas.overrides(tenantId);
    const used = await this.quotas.usage(tenantId);
    const byOffering = await this.quotas.usageByOffering(tenantId);
    return { overrides, used, byOffering };
  }
}
