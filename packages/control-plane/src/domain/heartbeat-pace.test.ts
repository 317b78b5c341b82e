import { describe, expect, it } from 'vitest';
import { heartbeatIntervalMs, paceChanged } from './heartbeat-pace.js';

describe('heartbeat pace', () => {
  const pace = { baseMs: 5000, perSecond: 250, leaseMs: 60_000 };

  it('keeps the configured interval while the fleet is within the budget', () => {
    expect(heartbeatIntervalMs(0, pace)).toBe(5000);
    expect(heartbeatIntervalMs(1, pace)).toBe(5000);
    expect(heartbeatIntervalMs(1250, pace)).toBe(5000);
  });

  it('grows with the fleet to keep the heartbeats a second within the budget, in whole seconds', () => {
    expect(heartbeatIntervalMs(1251, pace)).toBe(6000);
    expect(heartbeatIntervalMs(2000, pace)).toBe(8000);
    expect(heartbeatIntervalMs(2001, pace)).toBe(9000);
    // 8,000 sessions every 32 s would be 250 a second; the lease caps it first.
    for (const n of [1300, 2500, 4000, 4999])
      expect((n * 1000) / heartbeatIntervalMs(n, pace)).toBeLessThanOrEqual(250);
  });

  it('never beyond a third of the task lease, so a lease outlives two missed heartbeats', () => {
    expect(heartbeatIntervalMs(5000, pace)).toBe(20_000);
    expect(heartbeatIntervalMs(10_000, pace)).toBe(20_000);
    expect(heartbeatIntervalMs(1_000_000, pace)).toBe(20_000);
    expect(heartbeatIntervalMs(10_000, { ...pace, leaseMs: 90_000 })).toBe(30_000);
  });

  it('never below the configured interval, even when the lease is short', () => {
    // CAIRN_TASK_LEASE_MS may be as short as twice CAIRN_HEARTBEAT_MS.
    expect(heartbeatIntervalMs(10_000, { baseMs: 5000, perSecond: 250, leaseMs: 10_000 })).toBe(5000);
    expect(heartbeatIntervalMs(3, { baseMs: 200, perSecond: 10, leaseMs: 60_000 })).toBe(1000);
    expect(heartbeatIntervalMs(1, { baseMs: 200, perSecond: 10, leaseMs: 60_000 })).toBe(200);
  });

  it('tells a session of a new pace only when it moved by more than a quarter', () => {
    expect(paceChanged(5000, 5000)).toBe(false);
    expect(paceChanged(8000, 9000)).toBe(false);
    expect(paceChanged(8000, 10_001)).toBe(true);
    expect(paceChanged(20_000, 5000)).toBe(true);
  });
});
