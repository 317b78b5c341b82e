import { isSpAdmin, type Principal } from './access.js';
import { TooManyError } from './errors.js';

/**
 * Counts what callers hold open at once in this process (event streams, requests waiting) under
 * named limits, and refuses a hold over any of them. Pure counting: the caller holds the slot for
 * as long as the stream or the wait lasts and releases it once.
 */

/** One limit a hold counts against: at most `limit` holds under `key` for this quota. */
export interface HoldLimit<Q extends string> {
  quota: Q;
  key: string;
  limit: number;
  /** Told to the caller refused by this limit. */
  message: string;
}

export type Admission<Q extends string> =
  { ok: true; release: () => void } | { ok: false; quota: Q; limit: number; message: string };

/**
 * Holds counted by quota and key. A hold is admitted only when every limit it counts against has
 * room; then it counts against all of them until released.
 *
 * @example
 * const slot = counts.acquire([{ quota: 'perTenant', key: tenantId, limit: 10, message }]);
 * if (!slot.ok) throw new TooManyError('too_many_x', slot.message, 5, slot.quota);
 * try { await serve(); } finally { slot.release(); }
 */
export class HoldCounts<Q extends string> {
  private readonly counts = new Map<string, number>();

  acquire(limits: readonly HoldLimit<Q>[]): Admission<Q> {
    const full = limits.find((l) => this.held(l.quota, l.key) >= l.limit);
    if (full) return { ok: false, quota: full.quota, limit: full.limit, message: full.message };
    const keys = limits.map((l) => slotKey(l.quota, l.key));
    for (const k of keys) add(this.counts, k, 1);
    let held = true;
    return {
      ok: true,
      release: () => {
        if (!held) return;
        held = false;
        for (const k of keys) add(this.counts, k, -1);
      },
    };
  }

  /** Holds counted now under one quota: all of them, or one key's. */
  held(quota: Q, key?: string): number {
    if (key !== undefined) return this.counts.get(slotKey(quota, key)) ?? 0;
    let n = 0;
    for (const [k, v] of this.counts) if (k.startsWith(`${quota}\0`)) n += v;
    return n;
  }
}

/** How many event streams one API token, and one tenant (over all its tokens), may hold at once. */
export interface StreamLimits {
  perToken: number;
  perTenant: number;
}

export type StreamQuotaName = 'streamsPerToken' | 'streamsPerTenant';

export type StreamAdmission = Admission<StreamQuotaName>;

/**
 * The event streams held open, by token and by tenant (the service provider's own tenant, whose
 * sp-admins see every tenant's events, like any other).
 *
 * @example
 * const slot = quota.acquire(p.tokenId, p.tenantId);
 * if (!slot.ok) throw new TooManyError('too_many_streams', slot.message);
 * try { await serve(); } finally { slot.release(); }
 */
export class StreamQuota {
  private readonly counts = new HoldCounts<StreamQuotaName>();

  constructor(readonly limits: StreamLimits) {}

  acquire(tokenId: string, tenantId: string): StreamAdmission {
    const { perToken, perTenant } = this.limits;
    return this.counts.acquire([
      {
        quota: 'streamsPerToken',
        key: tokenId,
        limit: perToken,
        message: `this token already holds ${perToken} event streams on this control plane (the limit per token); close one first`,
      },
      {
        quota: 'streamsPerTenant',
        key: tenantId,
        limit: perTenant,
        message: `the tenant's tokens already hold ${perTenant} event streams on this control plane (the limit per tenant); close one first`,
      },
    ]);
  }

  /** Streams held now: all of them, or one token's. */
  held(tokenId?: string): number {
    return this.counts.held('streamsPerToken', tokenId);
  }
}

/**
 * How many requests may wait at once in this process (for maintenance readiness, for an
 * instance's power state before an in-place restore): each tenant its own `perTenant`, the
 * service provider's own tenant included, and all tenants but the provider together `total`, so
 * that tenants can never take the provider's room.
 */
export interface WaiterLimits {
  perTenant: number;
  total: number;
}

export type WaiterQuotaName = 'waitersPerTenant' | 'waiters';

/** The requests waiting, by tenant; the sp-admins' count only against their own tenant's limit. */
export class WaiterQuota {
  private readonly counts = new HoldCounts<WaiterQuotaName>();

  constructor(readonly limits: WaiterLimits) {}

  acquire(tenantId: string, serviceProvider: boolean): Admission<WaiterQuotaName> {
    const { perTenant, total } = this.limits;
    const own: HoldLimit<WaiterQuotaName> = {
      quota: 'waitersPerTenant',
      key: tenantId,
      limit: perTenant,
      message: `tenant ${tenantId} already has ${perTenant} requests waiting on this control plane (the limit per tenant, waitersPerTenant); retry later or without waiting`,
    };
    if (serviceProvider) return this.counts.acquire([own]);
    return this.counts.acquire([
      own,
      {
        quota: 'waiters',
        key: '',
        limit: total,
        message: `tenants already have ${total} requests waiting on this control plane (the limit for all tenants, waiters); retry later or without waiting`,
      },
    ]);
  }

  /** Requests waiting now: all tenants', or one tenant's. */
  held(tenantId?: string): number {
    return this.counts.held('waitersPerTenant', tenantId);
  }
}

/** What a refused waiter is told to wait before trying again, in seconds. */
export const WAITER_RETRY_AFTER_S = 5;

/**
 * A place in the waiting room for `p` (release it once the wait ends), or 429 too_many_waiters
 * with Retry-After and `quota` naming the limit reached.
 */
export function waitingPlace(quota: WaiterQuota, p: Principal): { release: () => void } {
  const slot = quota.acquire(p.tenantId, isSpAdmin(p));
  if (!slot.ok) throw new TooManyError('too_many_waiters', slot.message, WAITER_RETRY_AFTER_S, slot.quota);
  return slot;
}

/** Counts by key; a key at zero is dropped, so the map holds only what is open. */
function add(counts: Map<string, number>, key: string, delta: number): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

function slotKey(quota: string, key: string): string {
  return `${quota}\0${key}`;
}
