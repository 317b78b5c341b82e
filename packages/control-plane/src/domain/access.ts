import { NotFoundError } from './errors.js';

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

/**
 * `row` if `p` may see it. A row not there and one of another tenant get the same 404, so a
 * caller learns nothing of what it may not see.
 */
export function visibleRow<T extends { tenantId: string }>(
  p: Principal,
  row: T | undefined,
  what: string,
  id: string,
): T {
  if (!row || !canSee(p, row.tenantId)) throw new NotFoundError(what, id);
  return row;
}

/** Priority band of ad-hoc work: tenant users 0-49, SP admins 50-99 (docs/api.md, "Tasks"). */
export function defaultPriority(p: Principal): number {
  return isSpAdmin(p) ? 50 : 0;
}

/** The tenant filter for list queries: none for sp-admins, the own tenant otherwise. */
export function tenantScope(p: Principal): string | undefined {
  return isSpAdmin(p) ? undefined : p.tenantId;
}
