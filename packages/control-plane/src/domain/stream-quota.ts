/** How many event streams one API token, and one tenant (over all its tokens), may hold at once. */
export interface StreamLimits {
  perToken: number;
  perTenant: number;
}

export type StreamQuotaName = 'streamsPerToken' | 'streamsPerTenant';

export type StreamAdmission =
  { ok: true; release: () => void } | { ok: false; quota: StreamQuotaName; limit: number; message: string };

/**
 * Counts the event streams held open, by token and by tenant (the service provider's own tenant,
 * whose sp-admins see every tenant's events, like any other), and refuses one over either limit.
 * Pure counting: the caller holds the slot for as long as the stream lasts and releases it once.
 *
 * @example
 * const slot = quota.acquire(p.tokenId, p.tenantId);
 * if (!slot.ok) throw new TooManyError('too_many_streams', slot.message);
 * try { await serve(); } finally { slot.release(); }
 */
export class StreamQuota {
  private readonly byToken = new Map<string, number>();
  private readonly byTenant = new Map<string, number>();

  constructor(readonly limits: StreamLimits) {}

  acquire(tokenId: string, tenantId: string): StreamAdmission {
    const { perToken, perTenant } = this.limits;
    if ((this.byToken.get(tokenId) ?? 0) >= perToken)
      return {
        ok: false,
        quota: 'streamsPerToken',
        limit: perToken,
        message: `this token already holds ${perToken} event streams on this control plane (the limit per token); close one first`,
      };
    if ((this.byTenant.get(tenantId) ?? 0) >= perTenant)
      return {
        ok: false,
        quota: 'streamsPerTenant',
        limit: perTenant,
        message: `the tenant's tokens already hold ${perTenant} event streams on this control plane (the limit per tenant); close one first`,
      };
    add(this.byToken, tokenId, 1);
    add(this.byTenant, tenantId, 1);
    let held = true;
    return {
      ok: true,
      release: () => {
        if (!held) return;
        held = false;
        add(this.byToken, tokenId, -1);
        add(this.byTenant, tenantId, -1);
      },
    };
  }

  /** Streams held now: all of them, or one token's. */
  held(tokenId?: string): number {
    if (tokenId !== undefined) return this.byToken.get(tokenId) ?? 0;
    let n = 0;
    for (const v of this.byToken.values()) n += v;
    return n;
  }
}

/** Counts by key; a key at zero is dropped, so the maps hold only what is open. */
function add(counts: Map<string, number>, key: string, delta: number): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
