export const ROLES = ['sp-admin', 'tenant-admin', 'tenant-user'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: resolved from the bearer token. */
export interface Principal {
  tokenId: string;
  tenantId: string;
  role: Role;
}

export function isSpAdmin(p: Principal): boolean {
  return p.role === 'sp-admin';
}

/** A tenant sees only its own rows; an SP admin sees all. */
export function canSee(p: Principal, ownerTenantId: string): boolean {
  return isSpAdmin(p) || p.tenantId === ownerTenantId;
}

/** Priority band of ad-hoc work: tenant users 0-49, SP admins 50-99 (docs/api.md, "Tasks"). */
export function defaultPriority(p: Principal): number {
  return isSpAdmin(p) ? 50 : 0;
}

/** The tenant filter for list queries: none for sp-admins, the own tenant otherwise. */
export function tenantScope(p: Principal): string | undefined {
  return isSpAdmin(p) ? undefined : p.tenantId;
}
