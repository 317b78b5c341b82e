/**
 * Who sees which event. A tenant reads its own events. A maintenance change is written once for
 * each tenant it touches (the service provider's own tenant always among them), so that each of
 * them reads it; the sp-admin, who reads every tenant's events, reads it once: as the copy of
 * the service provider's own tenant.
 */

/** The type prefix of the events a maintenance change writes once per tenant it touches. */
export const FANNED_OUT_PREFIX = 'maintenance.';

/** `reader`: a tenant's id, or undefined for the sp-admin. */
export function eventSeen(
  row: { tenantId: string; type: string },
  reader: string | undefined,
  providerTenantId: string | undefined,
): boolean {
  if (reader !== undefined) return row.tenantId === reader;
  return providerTenantId === undefined || !row.type.startsWith(FANNED_OUT_PREFIX) || row.tenantId === providerTenantId;
}
