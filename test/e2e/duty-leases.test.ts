/**
 * The periodic duties on two replicas of one MySQL database: the RPO watch (and the provider
 * rounds, the job-history sweep, the history sweep) runs on the replica that holds its lease, not on both; killed
 * with -9, its holder's duties go to the other replica once the lease has run out.
 */
import { describe, expect, it } from 'vitest';
import { DutyLeaseRepository } from '@cairn/control-plane';
import { backends } from '@cairn/test-harness/databases';
import { metricValue } from '@cairn/test-harness/metrics';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const TICK_MS = 100;
const LEASE_MS = 2000;
const DUTIES = ['rpo-watch', 'provider-rounds', 'job-history', 'history'] as const;
type Duty = (typeof DUTIES)[number];

const passes = async (cp: ControlPlaneProc, duty: Duty) =>
  (await metricValue(cp, 'cairn_duty_passes_total', { duty })) ?? 0;
const holds = async (cp: ControlPlaneProc, duty: Duty) => (await metricValue(cp, 'cairn_duty_held', { duty })) === 1;

describe.runIf(backends.includes('mysql'))('periodic duties on two replicas of one MySQL database', () => {
  const stack = withStack('mysql', {
    replicas: 2,
    // The periodic sync on: its round is a duty too (the harness turns it off elsewhere).
    env: {
      CAIRN_SCHEDULER_TICK_MS: String(TICK_MS),
      CAIRN_DUTY_LEASE_MS: String(LEASE_MS),
      CAIRN_SYNC_INTERVAL_S: '60',
    },
  });

  /** A duty's lease as the store holds it. */
  let leases: DutyLeaseRepository | undefined;
  const lease = async (duty: Duty) => (leases ??= new DutyLeaseRepository((await stack.store()).db)).read(duty);

  it('runs each duty on one replica only, and on the other within the lease after a kill -9', async () => {
    const [a, b] = stack.replicas as [ControlPlaneProc, ControlPlaneProc];
    const holderOf = async (duty: Duty) => {
      const [ha, hb] = await Promise.all([holds(a, duty), holds(b, duty)]);
      return ha !== hb ? (ha ? a : b) : undefined;
    };
    for (const duty of DUTIES) await waitFor(() => holderOf(duty), `one replica to hold ${duty}`);

    // Over a window of at least 10 of the holder's passes, the other replica runs none.
    const window = async (duty: Duty) => {
      const holder = (await holderOf(duty))!;
      const other = holder === a ? b : a;
      const [h0, o0] = [await passes(holder, duty), await passes(other, duty)];
      await waitFor(async () => (await passes(holder, duty)) >= h0 + 10, `10 passes of ${duty}`);
      const [h1, o1] = [await passes(holder, duty), await passes(other, duty)];
      return { holder, other, held: h1 - h0, otherRan: o1 - o0 };
    };
    for (const duty of DUTIES) {
      const w = await window(duty);
      console.log(`duty ${duty}: holder ran ${w.held} passes, the other replica ${w.otherRan}`);
      expect(w.otherRan).toBe(0);
    }

    // Kill the RPO watch's holder: the other takes each duty once its lease runs out, not before.
    // Each lease runs out on its own (the holder took and renews them at ticks of its own), so
    // the duties move one by one.
    const holder = (await holderOf('rpo-watch'))!;
    const other = holder === a ? b : a;
    const held = await Promise.all(DUTIES.map((d) => holds(holder, d)));
    const before = await passes(other, 'rpo-watch');
    // Read before anything can take them over (the kill leaves them as they were).
    const dead = await Promise.all(DUTIES.map((d) => lease(d)));
    const killedAt = Date.now();
    await holder.proc.kill9();
    await waitFor(async () => (await passes(other, 'rpo-watch')) > before, 'the other replica to run the RPO watch');
    const tookOverMs = Date.now() - killedAt;
    for (const duty of DUTIES) await waitFor(() => holds(other, duty), `the other replica to hold ${duty}`);
    const allMovedMs = Date.now() - killedAt;
    const taken = await Promise.all(DUTIES.map((d) => lease(d)));
    const rpo = DUTIES.indexOf('rpo-watch');
    console.log(
      `kill -9 of the holder of ${DUTIES.filter((_, i) => held[i]).join(', ')}: RPO watch taken over ${tookOverMs} ms after the kill, ${taken[rpo]!.heldSince - dead[rpo]!.expiresAt} ms after its lease ran out; every duty held by the other ${allMovedMs} ms after the kill (lease ${LEASE_MS} ms, tick ${TICK_MS} ms)`,
    );
    DUTIES.forEach((duty, i) => {
      if (!held[i]) return;
      // Not before the dead holder's lease ran out, and by another holder.
      expect(taken[i]!.holder, duty).not.toBe(dead[i]!.holder);
      expect(taken[i]!.heldSince, duty).toBeGreaterThanOrEqual(dead[i]!.expiresAt);
    });
    expect(tookOverMs).toBeLessThan(LEASE_MS + 10_000);
    expect(allMovedMs).toBeLessThan(LEASE_MS + 10_000);
  });

  it('hands the duties over at once when their holder stops cleanly', async () => {
    const live = stack.replicas.filter((cp) => cp.proc.running);
    const [holder] = live as [ControlPlaneProc];
    const other = await stack.controlPlane();
    await waitFor(() => holds(holder, 'rpo-watch'), 'the first replica to keep the RPO watch');
    expect(await holds(other, 'rpo-watch')).toBe(false);
    const renewed = (await lease('rpo-watch'))!;
    const stoppedAt = Date.now();
    await holder.proc.stop();
    await waitFor(() => holds(other, 'rpo-watch'), 'the new replica to take the RPO watch');
    const tookOverMs = Date.now() - stoppedAt;
    const taken = (await lease('rpo-watch'))!;
    console.log(`clean stop of the holder: taken over after ${tookOverMs} ms (lease ${LEASE_MS} ms)`);
    // Released at the stop: taken before the lease it had renewed last would have run out.
    expect(taken.holder).not.toBe(renewed.holder);
    expect(taken.heldSince).toBeLessThan(renewed.expiresAt);
  });
});
