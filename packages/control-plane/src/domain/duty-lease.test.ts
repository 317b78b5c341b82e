import { describe, expect, it } from 'vitest';
import { leaseDecision, leaseExpiry, renewalInterval } from './duty-lease.js';

describe('leaseDecision', () => {
  it.each([
    ['nobody ever held it', undefined, 'a', 10, { action: 'take' }],
    ['another holds it', { holder: 'b', expiresAt: 20 }, 'a', 10, { action: 'leave', holder: 'b', until: 20 }],
    ["another's lease ran out", { holder: 'b', expiresAt: 9 }, 'a', 10, { action: 'take' }],
    ["another's lease ends now", { holder: 'b', expiresAt: 10 }, 'a', 10, { action: 'take' }],
    ['it holds it', { holder: 'a', expiresAt: 20 }, 'a', 10, { action: 'renew' }],
    ['its own lease ran out', { holder: 'a', expiresAt: 5 }, 'a', 10, { action: 'take' }],
  ] as const)('%s', (_, lease, me, now, want) => {
    expect(leaseDecision(lease, me, now)).toEqual(want);
  });

  it('runs a lease from its renewal', () => {
    expect(leaseExpiry(1000, 15_000)).toBe(16_000);
  });

  it('renews a third of the way into the lease, never less than every millisecond', () => {
    expect(renewalInterval(15_000)).toBe(5000);
    expect(renewalInterval(1000)).toBe(333);
    expect(renewalInterval(2)).toBe(1);
  });
});
