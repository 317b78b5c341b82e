import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { DUTIES } from '../domain/duty-lease.js';
import { storeFixture } from '../testing/store-fixture.js';
import { Duties } from './duties.js';

const LEASE_MS = 3000;

describe.each(backends)('duties of replicas on one store (%s)', (backend) => {
  const f = storeFixture(backend);
  const { dutyLeases } = f.repos;
  beforeEach(() => f.store.db.deleteFrom('dutyLeases').execute());
  /** A replica's duties, counting its writes and reads of the leases. */
  const replica = (holder: string) => {
    const counted = { holds: 0, reads: 0 };
    const leases = Object.create(dutyLeases) as typeof dutyLeases;
    leases.hold = (...a) => (counted.holds++, dutyLeases.hold(...a));
    leases.readAll = () => (counted.reads++, dutyLeases.readAll());
    return { duties: new Duties({ leases, holder, leaseMs: LEASE_MS, log: pino({ level: 'silent' }) }), counted };
  };
  /** One tick of a replica at `now`: which duties it runs. */
  const tick = async (r: ReturnType<typeof replica>, now: number) => {
    r.duties.startTick();
    const held = [];
    for (const duty of DUTIES) if (await r.duties.holds(duty, now)) held.push(duty);
    return held;
  };

  it('renews a held lease a third of the way into it, and asks the store nothing between', async () => {
    const a = replica('a');
    expect(await tick(a, 0)).toEqual([...DUTIES]);
    const took = { ...a.counted };
    // Ticks every 100 ms up to just before a third of the lease: nothing written, nothing read.
    for (let now = 100; now < LEASE_MS / 3; now += 100) expect(await tick(a, now)).toEqual([...DUTIES]);
    expect(a.counted).toEqual(took);
    expect((await dutyLeases.read('rpo-watch'))?.expiresAt).toBe(LEASE_MS);
    // At a third: one renewal per duty.
    expect(await tick(a, LEASE_MS / 3)).toEqual([...DUTIES]);
    expect(a.counted.holds).toBe(took.holds + DUTIES.length);
    expect((await dutyLeases.read('rpo-watch'))?.expiresAt).toBe(LEASE_MS / 3 + LEASE_MS);
  });

  it('leaves a held lease alone with one read a tick, and takes it when it runs out or is released', async () => {
    const a = replica('a');
    const b = replica('b');
    expect(await tick(a, 0)).toEqual([...DUTIES]);
    for (let now = 100; now < LEASE_MS; now += 100) expect(await tick(b, now)).toEqual([]);
    // One read of every lease per tick, no write attempted while the leases run.
    expect(b.counted).toEqual({ holds: 0, reads: LEASE_MS / 100 - 1 });
    // a dies (renews nothing): b takes every duty the tick its lease runs out.
    expect(await tick(b, LEASE_MS)).toEqual([...DUTIES]);
    // b stops cleanly: a takes them back at its next tick, long before b's leases would run out.
    await b.duties.release(LEASE_MS + 100);
    expect(await tick(a, LEASE_MS + 200)).toEqual([...DUTIES]);
    expect((await dutyLeases.read('job-history'))?.holder).toBe('a');
  });

  it('gives a duty up when its renewal is refused: another took it after a stall past the lease', async () => {
    const a = replica('a');
    const b = replica('b');
    expect(await tick(a, 0)).toEqual([...DUTIES]);
    // a stalls past its lease; b takes over meanwhile.
    expect(await tick(b, LEASE_MS + 10)).toEqual([...DUTIES]);
    // a's next tick is past its renewal time: it tries, is refused, and runs nothing.
    expect(await tick(a, LEASE_MS + 20)).toEqual([]);
    expect(await tick(a, LEASE_MS + 120)).toEqual([]);
  });
});
