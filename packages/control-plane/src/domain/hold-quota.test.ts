import { describe, expect, it } from 'vitest';
import { TooManyError } from './errors.js';
import { HoldCounts, StreamQuota, WaiterQuota, waitingPlace } from './hold-quota.js';

describe('HoldCounts', () => {
  const limit = (key: string, n: number) => ({ quota: 'q' as const, key, limit: n, message: `full ${key}` });

  it('admits up to the limit per key, refuses one more naming it, and counts a release once', () => {
    const counts = new HoldCounts<'q'>();
    const first = counts.acquire([limit('a', 2)]);
    expect(counts.acquire([limit('a', 2)]).ok).toBe(true);
    expect(counts.acquire([limit('a', 2)])).toEqual({ ok: false, quota: 'q', limit: 2, message: 'full a' });
    expect(counts.acquire([limit('b', 2)]).ok).toBe(true);
    if (!first.ok) throw new Error('admitted');
    first.release();
    first.release();
    expect(counts.held('q', 'a')).toBe(1);
    expect(counts.held('q')).toBe(2);
  });

  it('a hold refused by one of its limits counts against none', () => {
    const counts = new HoldCounts<'q' | 'all'>();
    expect(counts.acquire([limit('a', 1)]).ok).toBe(true);
    const all = { quota: 'all' as const, key: '', limit: 10, message: 'all' };
    expect(counts.acquire([all, limit('a', 1)]).ok).toBe(false);
    expect(counts.held('all')).toBe(0);
  });
});

describe('WaiterQuota', () => {
  it("counts each tenant's waits against its own limit, so one tenant at its cap leaves the others room", () => {
    const quota = new WaiterQuota({ perTenant: 2, total: 100 });
    expect(quota.acquire('ten_a', false).ok).toBe(true);
    expect(quota.acquire('ten_a', false).ok).toBe(true);
    expect(quota.acquire('ten_a', false)).toMatchObject({ ok: false, quota: 'waitersPerTenant', limit: 2 });
    expect(quota.acquire('ten_b', false).ok).toBe(true);
    expect(quota.acquire('ten_sp', true).ok).toBe(true);
    expect(quota.held('ten_a')).toBe(2);
    expect(quota.held()).toBe(4);
  });

  it("all tenants together stop at the ceiling; the provider's own waits are outside it, within their own cap", () => {
    const quota = new WaiterQuota({ perTenant: 2, total: 3 });
    for (const t of ['ten_a', 'ten_a', 'ten_b']) expect(quota.acquire(t, false).ok).toBe(true);
    const refused = quota.acquire('ten_c', false);
    expect(refused).toMatchObject({ ok: false, quota: 'waiters', limit: 3 });
    expect(!refused.ok && refused.message).toContain('3 requests waiting');
    expect(quota.acquire('ten_sp', true).ok).toBe(true);
    expect(quota.acquire('ten_sp', true).ok).toBe(true);
    expect(quota.acquire('ten_sp', true)).toMatchObject({ ok: false, quota: 'waitersPerTenant' });
  });

  it('waitingPlace answers 429 too_many_waiters with Retry-After and the quota, naming the cap', () => {
    const quota = new WaiterQuota({ perTenant: 1, total: 10 });
    const p = { tokenId: 'tok_1', tenantId: 'ten_a', role: 'tenant-user' as const };
    const place = waitingPlace(quota, p);
    let err: unknown;
    try {
      waitingPlace(quota, p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TooManyError);
    expect(err).toMatchObject({
      status: 429,
      code: 'too_many_waiters',
      retryAfterS: 5,
      extensions: { quota: 'waitersPerTenant' },
    });
    expect((err as Error).message).toContain('1 requests waiting');
    place.release();
    expect(() => waitingPlace(quota, p).release()).not.toThrow();
  });
});

describe('StreamQuota', () => {
  it('caps streams per token and per tenant', () => {
    const quota = new StreamQuota({ perToken: 1, perTenant: 2 });
    expect(quota.acquire('tok_1', 'ten_a').ok).toBe(true);
    expect(quota.acquire('tok_1', 'ten_a')).toMatchObject({ ok: false, quota: 'streamsPerToken' });
    expect(quota.acquire('tok_2', 'ten_a').ok).toBe(true);
    expect(quota.acquire('tok_3', 'ten_a')).toMatchObject({ ok: false, quota: 'streamsPerTenant' });
    expect([quota.held(), quota.held('tok_1')]).toEqual([2, 1]);
  });
});
