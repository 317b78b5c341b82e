import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { check, checkBackupStart, isQuotaName, limitOf, QUOTA_NAMES, QUOTAS, quotaBinds } from './quotas.js';

describe('quota rules', () => {
  it('has a default within its ceiling for every quota', () => {
    for (const q of QUOTA_NAMES) {
      expect(QUOTAS[q].default).toBeGreaterThan(0);
      expect(QUOTAS[q].default).toBeLessThanOrEqual(QUOTAS[q].ceiling);
    }
  });

  it('keeps the caps a job had before quotas as its defaults', () => {
    expect(QUOTAS.schedulesPerJob.default).toBe(20);
    expect(QUOTAS.membersPerJob).toMatchObject({ default: 500, ceiling: 500 });
  });

  it('knows its own names only', () => {
    expect(isQuotaName('instances')).toBe(true);
    expect(isQuotaName('toString')).toBe(false);
    expect(isQuotaName('Instances')).toBe(false);
  });

  it('uses the tenant’s own limit where the service provider set one, else the default', () => {
    expect(limitOf('jobs', {})).toBe(QUOTAS.jobs.default);
    expect(limitOf('jobs', { jobs: 3 })).toBe(3);
    expect(limitOf('jobs', { jobs: 0 })).toBe(0);
    expect(limitOf('instances', { jobs: 3 })).toBe(QUOTAS.instances.default);
  });

  it.each([
    ['below the limit', 2, 1, 1, true],
    ['up to the limit exactly', 2, 0, 2, true],
    ['the last free unit', 2, 1, 1, true],
    ['one past the limit', 2, 2, 1, false],
    ['several at once past the limit', 20, 0, 21, false],
    ['several at once up to the limit', 20, 0, 20, true],
    ['a limit of 0 refuses the first', 0, 0, 1, false],
    ['adding nothing over a lowered limit', 2, 5, 0, true],
    ['removing over a lowered limit', 2, 5, -3, true],
    ['adding over a lowered limit', 2, 5, 1, false],
  ] as const)('%s', (_what, limit, used, adding, ok) => {
    expect(check('instances', limit, used, adding).ok).toBe(ok);
  });

  it('names the quota, its limit and the usage when it refuses', () => {
    const verdict = check('schedulesPerJob', 20, 20, 1);
    expect(verdict).toEqual({
      ok: false,
      problem: {
        quota: 'schedulesPerJob',
        limit: 20,
        used: 20,
        adding: 1,
        message: expect.stringMatching(/schedulesPerJob.*limit is 20.*20 in use/) as unknown,
      },
    });
  });

  it('never lets usage end above the limit unless it already was', () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(1000), fc.integer({ min: -5, max: 1000 }), (limit, used, adding) => {
        const verdict = check('jobs', limit, used, adding);
        if (verdict.ok) expect(used + adding <= limit || adding <= 0).toBe(true);
        else expect(used + adding).toBeGreaterThan(limit);
      }),
    );
  });
});

describe('per-offering backup quotas', () => {
  const none = { restorePoints: 0, bytes: 0 };

  it('starts a backup while both are below their limits, and names the offering when not', () => {
    expect(checkBackupStart('ofr_1', {}, none).ok).toBe(true);
    expect(checkBackupStart('ofr_1', { restorePointsPerOffering: 2 }, { restorePoints: 1, bytes: 0 }).ok).toBe(true);
    expect(checkBackupStart('ofr_1', { restorePointsPerOffering: 2 }, { restorePoints: 2, bytes: 0 })).toEqual({
      ok: false,
      problem: expect.objectContaining({ quota: 'restorePointsPerOffering', limit: 2, used: 2, offeringId: 'ofr_1' }),
    });
  });

  it('refuses by bytes only once the usage reached the limit (a backup’s size is known when it is done)', () => {
    const limits = { bytesPerOffering: 1000 };
    expect(checkBackupStart('ofr_1', limits, { restorePoints: 1, bytes: 999 }).ok).toBe(true);
    const at = checkBackupStart('ofr_1', limits, { restorePoints: 1, bytes: 1000 });
    expect(at).toMatchObject({ ok: false, problem: { quota: 'bytesPerOffering', limit: 1000, used: 1000 } });
    expect(!at.ok && at.problem.message).toContain('ofr_1');
    expect(checkBackupStart('ofr_1', { bytesPerOffering: 0 }, none).ok).toBe(false);
  });

  it('binds the tenant’s band and never the service provider’s', () => {
    expect(quotaBinds(0)).toBe(true);
    expect(quotaBinds(49)).toBe(true);
    expect(quotaBinds(50)).toBe(false);
    expect(quotaBinds(99)).toBe(false);
  });
});
