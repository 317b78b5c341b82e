import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';

describe.each(backends)('duty leases (%s)', (backend) => {
  const f = storeFixture(backend);
  const { dutyLeases } = f.repos;

  it('is held by one of many replicas taking it at once, and renewed only by its holder', async () => {
    const replicas = Array.from({ length: 8 }, (_, i) => `replica-${i}`);
    const took = await Promise.all(replicas.map((r) => dutyLeases.hold('rpo-watch', r, 1000, 16_000)));
    expect(took.filter(Boolean)).toHaveLength(1);
    const holder = replicas[took.indexOf(true)]!;
    const others = replicas.filter((r) => r !== holder);
    // Before it runs out, only the holder renews it.
    const renewed = await Promise.all(replicas.map((r) => dutyLeases.hold('rpo-watch', r, 5000, 20_000)));
    expect(renewed).toEqual(replicas.map((r) => r === holder));
    // A clock that stood still renews to the same expiry: still held.
    expect(await dutyLeases.hold('rpo-watch', holder, 5000, 20_000)).toBe(true);
    expect(await dutyLeases.read('rpo-watch')).toEqual({ holder, expiresAt: 20_000, heldSince: 1000 });
    // Run out (the holder died): one other takes it over, from that time.
    const after = await Promise.all(others.map((r) => dutyLeases.hold('rpo-watch', r, 20_000, 35_000)));
    expect(after.filter(Boolean)).toHaveLength(1);
    const next = others[after.indexOf(true)]!;
    expect(await dutyLeases.read('rpo-watch')).toEqual({ holder: next, expiresAt: 35_000, heldSince: 20_000 });
    expect(await dutyLeases.hold('rpo-watch', holder, 21_000, 36_000)).toBe(false);
  });

  it('is released by its holder alone, and each duty is leased on its own', async () => {
    expect(await dutyLeases.hold('job-history', 'a', 1000, 16_000)).toBe(true);
    expect(await dutyLeases.hold('provider-rounds', 'b', 1000, 16_000)).toBe(true);
    await dutyLeases.release('job-history', 'b', 2000);
    expect(await dutyLeases.hold('job-history', 'b', 2000, 17_000)).toBe(false);
    await dutyLeases.release('job-history', 'a', 2000);
    expect(await dutyLeases.hold('job-history', 'b', 2000, 17_000)).toBe(true);
    expect((await dutyLeases.read('provider-rounds'))?.holder).toBe('b');
  });
});
