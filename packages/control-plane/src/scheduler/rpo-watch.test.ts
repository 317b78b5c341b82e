import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';
import { RPO_FULL_PASS_MS, RpoWatch } from './rpo-watch.js';

// Fires only on 1 January: never while these tests run.
const NEVER = '0 2 1 1 *';
const MIN = 60_000;
const T0 = Date.parse('2026-06-01T00:00:00Z');

// What the watch reads on a tick, against the store's change mark as the scheduler's probe reads it.
describe.each(backends)('the RPO watch reads its instances only when an answer can change (%s)', (backend) => {
  const f = storeFixture(backend);
  const { catalog, rpo, events, schedules } = f.repos;
  let offeringId: string;
  let ids: string[];
  let watch: RpoWatch;
  let counted: typeof rpo;
  const reads = { pages: 0, offerings: 0 };

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    const sla = { cron: NEVER, keepLast: 1, rpoMinutes: 60 };
    offeringId = (await f.offering({ providerId, sla }, T0)).id;
    ids = [];
    for (let i = 0; i < 3; i++) {
      const instance = await f.instance({ name: `vm-${i}` }, T0);
      // Assigned a minute apart: the first breaches at 01:00, the last at 01:02.
      await catalog.setInstanceOffering(instance.id, offeringId, T0 + i * MIN);
      ids.push(instance.id);
    }
    counted = Object.create(rpo) as typeof rpo;
    counted.watched = (...a) => (reads.pages++, rpo.watched(...a));
    // No bound on the time between passes here: the last test puts the bound back.
    watch = new RpoWatch({
      root: f.store.db,
      rpo: counted,
      events,
      log: pino({ level: 'silent' }),
      fullPassMs: Infinity,
    });
  });

  /** One tick at `now` as the scheduler makes it; what it read. */
  const tick = async (now: number) => {
    const before = { ...reads };
    const { changes } = await schedules.probe(now);
    await watch.tick(now, changes, () => (reads.offerings++, schedules.listSlaOfferings()));
    return { pages: reads.pages - before.pages, offerings: reads.offerings - before.offerings };
  };
  const breaches = async () =>
    (await events.list(0, 100, undefined, undefined, { typePrefix: 'rpo.breached' })).rows
      .map((e) => e.instanceId)
      .sort();
  const READ = { pages: 1, offerings: 1 };
  const NOTHING = { pages: 0, offerings: 0 };

  it('reads once, then nothing until the first instance can breach; raises each breach on the tick it happens', async () => {
    expect(await tick(T0 + 2 * MIN)).toEqual(READ);
    for (let now = T0 + 3 * MIN; now <= T0 + 60 * MIN; now += MIN) expect(await tick(now)).toEqual(NOTHING);
    expect(await breaches()).toEqual([]);
    // Exactly 60 minutes is still met; a millisecond later the first breaches, on that tick.
    expect(await tick(T0 + 60 * MIN + 1)).toEqual(READ);
    expect(await breaches()).toEqual([ids[0]]);
    // Its own write moved the mark: one more read, then nothing until the next can breach.
    expect(await tick(T0 + 60 * MIN + 2)).toEqual(READ);
    expect(await tick(T0 + 61 * MIN)).toEqual(NOTHING);
    expect(await tick(T0 + 61 * MIN + 1)).toEqual(READ);
    expect(await breaches()).toEqual([ids[0], ids[1]].sort());
  });

  it('reads on the next tick when an SLA or an assignment changes, and when the clock goes back', async () => {
    const now = T0 + 61 * MIN + 10;
    await tick(now);
    expect(await tick(now + 1)).toEqual(NOTHING);
    // A tighter RPO (dated back to 00:00, so it counts from the assignments): the last instance,
    // assigned at 00:02, is past 30 minutes at once.
    await catalog.updateOffering(offeringId, { sla: { cron: NEVER, keepLast: 1, rpoMinutes: 30 } }, T0);
    expect(await tick(now + 2)).toEqual(READ);
    expect(await breaches()).toEqual([...ids].sort());
    await tick(now + 3);
    expect(await tick(now + 4)).toEqual(NOTHING);
    // An instance leaves the offering: its breach is forgotten on the next tick.
    await catalog.setInstanceOffering(ids[0]!, null);
    expect(await rpo.breached()).toBe(3);
    expect(await tick(now + 5)).toEqual(READ);
    expect(await rpo.breached()).toBe(2);
    expect(await tick(now + 6)).toEqual(NOTHING);
    // The clock steps back: nothing it knew holds.
    expect(await tick(now - MIN)).toEqual(READ);
  });

  it(`reads at least every ${RPO_FULL_PASS_MS / MIN} minutes whatever the mark says, and afresh after the duty moved away`, async () => {
    watch = new RpoWatch({ root: f.store.db, rpo: counted, events, log: pino({ level: 'silent' }) });
    const now = T0 + 70 * MIN;
    await tick(now);
    expect(await tick(now + RPO_FULL_PASS_MS - 1)).toEqual(NOTHING);
    expect(await tick(now + RPO_FULL_PASS_MS)).toEqual(READ);
    watch.forget();
    expect(await tick(now + RPO_FULL_PASS_MS + 1)).toEqual(READ);
  });
});
