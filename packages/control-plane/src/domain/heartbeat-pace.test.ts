import { describe, expect, it } from 'vitest';
import {
  answerHeartbeat,
  heartbeatIntervalMs,
  heartbeatWindowMs,
  idleHeartbeatIntervalMs,
  paceChanged,
  presenceStaleAfterMs,
} from './heartbeat-pace.js';

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

  it('lets an agent holding no task beat at the budget, beyond the lease cap, at most once a lease', () => {
    // A small fleet: the configured interval, idle or not.
    expect(idleHeartbeatIntervalMs(1, pace)).toBe(5000);
    expect(idleHeartbeatIntervalMs(1250, pace)).toBe(5000);
    expect(idleHeartbeatIntervalMs(2001, pace)).toBe(heartbeatIntervalMs(2001, pace));
    // 10,000 idle agents every 40 s: the budget's 250 a second, where busy ones beat every 20 s.
    expect(idleHeartbeatIntervalMs(10_000, pace)).toBe(40_000);
    expect(10_000 / (idleHeartbeatIntervalMs(10_000, pace) / 1000)).toBeLessThanOrEqual(250);
    // Never beyond a lease: presence is judged against two.
    expect(idleHeartbeatIntervalMs(1_000_000, pace)).toBe(60_000);
    expect(presenceStaleAfterMs(pace.leaseMs)).toBeGreaterThan(idleHeartbeatIntervalMs(1_000_000, pace));
    // Never below the busy interval, even when the lease is short.
    const short = { baseMs: 5000, perSecond: 250, leaseMs: 3000 };
    expect(idleHeartbeatIntervalMs(10_000, short)).toBe(5000);
    for (const n of [0, 1, 999, 5000, 12_345, 100_000])
      expect(idleHeartbeatIntervalMs(n, pace)).toBeGreaterThanOrEqual(heartbeatIntervalMs(n, pace));
  });

  it('tells a session of a new pace only when it moved by more than a quarter', () => {
    expect(paceChanged(5000, 5000)).toBe(false);
    expect(paceChanged(8000, 9000)).toBe(false);
    expect(paceChanged(8000, 10_001)).toBe(true);
    expect(paceChanged(20_000, 5000)).toBe(true);
  });

  it('answers every heartbeat below 10 s, and every second one from 10 s', () => {
    const answered = (toldMs: number, n: number) => {
      let previous = false;
      const out: boolean[] = [];
      for (let i = 0; i < n; i++) out.push((previous = answerHeartbeat(toldMs, previous)));
      return out;
    };
    expect(answered(5000, 4)).toEqual([true, true, true, true]);
    expect(answered(9999, 3)).toEqual([true, true, true]);
    expect(answered(10_000, 5)).toEqual([true, false, true, false, true]);
    expect(answered(40_000, 4)).toEqual([true, false, true, false]);
  });

  it('stores heartbeats a quarter second at a time, longer as the pace slows, at most 2 s', () => {
    expect(heartbeatWindowMs(1, pace)).toBe(250);
    expect(heartbeatWindowMs(1250, pace)).toBe(250);
    expect(heartbeatWindowMs(2000, pace)).toBe(400); // 8 s
    expect(heartbeatWindowMs(10_000, pace)).toBe(1000); // 20 s
    expect(heartbeatWindowMs(10_000, { ...pace, leaseMs: 600_000 })).toBe(2000); // 40 s
    // A short configured interval: a quarter of it.
    expect(heartbeatWindowMs(1, { baseMs: 200, perSecond: 250, leaseMs: 3000 })).toBe(50);
    // Always well inside the lease.
    for (const n of [1, 5000, 100_000]) expect(heartbeatWindowMs(n, pace) * 3).toBeLessThan(pace.leaseMs / 3);
  });
});
