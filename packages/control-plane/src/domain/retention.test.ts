import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  adoptedRecordedAt,
  isFutureDated,
  backupsToDelete,
  madeRecordedAt,
  PROVIDER_CLOCK_SKEW_MS,
  type RetainedBackup,
} from './retention.js';

/** `chain('F a, I b<a, I c<b')`: a full `a` at t=1, then `b` on `a` at t=2, ... */
function chain(spec: string): RetainedBackup[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s, i) => {
      const m = /^(F|I) (\w+)(?:<(\w+))?$/.exec(s);
      if (!m) throw new Error(`bad spec ${s}`);
      return { id: m[2]!, recordedAt: i + 1, parentId: m[3] ?? null, mode: m[1] === 'F' ? 'FULL' : 'INCREMENT' };
    });
}

describe('backupsToDelete', () => {
  const cases: [string, string, number | null, boolean, string[]][] = [
    ['nothing to keep track of', '', 3, false, []],
    ['fewer than keepLast', 'F a, F b', 3, false, []],
    ['exactly keepLast', 'F a, F b, F c', 3, false, []],
    ['fulls beyond keepLast, newest first', 'F a, F b, F c, F d, F e', 3, false, ['b', 'a']],
    ['keepLast 1', 'F a, F b, F c', 1, false, ['b', 'a']],
    ['no keepLast: keep all', 'F a, F b, F c', null, false, []],
    ['keepLast 0 is no retention, not delete-all', 'F a, F b', 0, false, []],
    ['the base of a kept increment survives', 'F a, I b<a, I c<b, I d<c', 2, false, []],
    ['the whole chain of a kept increment survives', 'F a, I b<a, I c<b, F d, I e<d', 1, false, ['c', 'b', 'a']],
    ['an old chain no kept point needs goes, children first', 'F a, I b<a, F c, F d, F e', 3, false, ['b', 'a']],
    ['handles-chains: the parent may go', 'F a, I b<a, I c<b, I d<c', 2, true, ['b', 'a']],
    ['an increment with an unknown base is kept as any other', 'I a<zz, I b<a, F c', 1, false, ['b', 'a']],
    ['a fractional keepLast deletes nothing', 'F a, F b', 1.5, false, []],
  ];
  it.each(cases)('%s', (_name, spec, keepLast, handlesChains, expected) => {
    expect(backupsToDelete(chain(spec), { keepLast, handlesChains })).toEqual(expected);
  });

  it('orders records of one millisecond by id, whatever order they come in', () => {
    const same = [
      { id: 'bkp_2', recordedAt: 5, parentId: null, mode: 'FULL' },
      { id: 'bkp_1', recordedAt: 5, parentId: null, mode: 'FULL' },
      { id: 'bkp_3', recordedAt: 5, parentId: null, mode: 'FULL' },
    ];
    expect(backupsToDelete(same, { keepLast: 1, handlesChains: false })).toEqual(['bkp_2', 'bkp_1']);
  });

  it('stops on a corrupt parent cycle', () => {
    const cyclic = [
      { id: 'a', recordedAt: 1, parentId: 'b', mode: 'INCREMENT' },
      { id: 'b', recordedAt: 2, parentId: 'a', mode: 'INCREMENT' },
      { id: 'c', recordedAt: 3, parentId: 'b', mode: 'INCREMENT' },
    ];
    expect(backupsToDelete(cyclic, { keepLast: 1, handlesChains: false })).toEqual([]);
  });

  describe('with expiry times', () => {
    /** Records of `chain(spec)`, those named in `expired` expiring at t=10. */
    const expiring = (spec: string, expired: string[]) =>
      chain(spec).map((b) => ({ ...b, expiresAt: expired.includes(b.id) ? 10 : null }));
    const cases: [string, string, string[], number | null, number | undefined, boolean, string[]][] = [
      ['an expired point goes without keep-last', 'F a, F b, F c', ['a'], null, 10, false, ['a']],
      ['not yet expired stays', 'F a, F b, F c', ['a'], null, 9, false, []],
      ['expiry is ignored without now', 'F a, F b', ['a', 'b'], null, undefined, false, []],
      ['expiry and keep-last together', 'F a, F b, F c, F d', ['d'], 2, 10, false, ['d', 'b', 'a']],
      ['an expired base of a kept increment stays', 'F a, I b<a', ['a'], null, 10, false, []],
      ['an expired chain goes, children first', 'F a, I b<a, F c', ['a', 'b'], null, 10, false, ['b', 'a']],
      ['handles-chains: an expired base goes', 'F a, I b<a', ['a'], null, 10, true, ['a']],
    ];
    it.each(cases)('%s', (_name, spec, expired, keepLast, now, handlesChains, expected) => {
      expect(
        backupsToDelete(expiring(spec, expired), { keepLast, handlesChains, ...(now !== undefined ? { now } : {}) }),
      ).toEqual(expected);
    });
  });
});

describe('recorded times', () => {
  const made = (recordedAt: number) => ({ recordedAt, made: true });
  const found = (recordedAt: number) => ({ recordedAt, made: false });

  it('a point Cairn made is recorded at now, or just after the newest record when the clock is behind it', () => {
    expect(madeRecordedAt([], 1000)).toBe(1000);
    expect(madeRecordedAt([made(10), found(20)], 1000)).toBe(1000);
    expect(madeRecordedAt([made(10), found(5000)], 1000)).toBe(5001);
    expect(madeRecordedAt([made(5000), made(10)], 1000)).toBe(5001);
  });

  it('a found point is recorded at its provider time, never later than now', () => {
    expect(adoptedRecordedAt([made(900)], 500, 1000)).toEqual({ recordedAt: 500, futureDated: false });
    expect(adoptedRecordedAt([made(900)], 950, 1000)).toEqual({ recordedAt: 950, futureDated: false });
    // Within the skew allowance: now, not future-dated.
    expect(adoptedRecordedAt([made(900)], 1000 + PROVIDER_CLOCK_SKEW_MS, 1000)).toEqual({
      recordedAt: 1000,
      futureDated: false,
    });
  });

  it('a point is future-dated only beyond the skew allowance', () => {
    expect(isFutureDated(1000 + PROVIDER_CLOCK_SKEW_MS, 1000)).toBe(false);
    expect(isFutureDated(1001 + PROVIDER_CLOCK_SKEW_MS, 1000)).toBe(true);
    expect(isFutureDated(0, 1000)).toBe(false);
  });

  it('a future-dated point ranks below every point Cairn made, or at now when Cairn made none', () => {
    const future = 1001 + PROVIDER_CLOCK_SKEW_MS;
    expect(adoptedRecordedAt([made(900), made(700), found(100)], future, 1000)).toEqual({
      recordedAt: 699,
      futureDated: true,
    });
    expect(adoptedRecordedAt([found(100)], future, 1000)).toEqual({ recordedAt: 1000, futureDated: true });
    // A Cairn record ahead of the clock (made before it was stepped back) does not lift it above now.
    expect(adoptedRecordedAt([made(5000)], Date.parse('2099-01-01'), 1000)).toEqual({
      recordedAt: 1000,
      futureDated: true,
    });
  });

  /*
   * Sequences of "Cairn makes a backup at wall clock t" and "a sync adopts a point dated p", the
   * clock stepping forward and back by up to years, each followed by keep-last k as the store
   * applies it (the doomed records go).
   */
  const YEAR = 365 * 24 * 3600_000;
  const START = Date.parse('2026-06-01T00:00:00Z');
  type Action =
    { kind: 'backup'; step: number } | { kind: 'adopt'; step: number; p: 'future' | 'before' | 'near'; by: number };
  const step = fc.oneof(fc.integer({ min: -3 * YEAR, max: 3 * YEAR }), fc.integer({ min: -60_000, max: 60_000 }));
  const action: fc.Arbitrary<Action> = fc.oneof(
    fc.record({ kind: fc.constant('backup' as const), step }),
    fc.record({
      kind: fc.constant('adopt' as const),
      step,
      // Future-dated, dated before the newest backup Cairn made, or anywhere around now.
      p: fc.constantFrom('future' as const, 'before' as const, 'near' as const),
      by: fc.integer({ min: 1, max: 80 * YEAR }),
    }),
  );

  interface Rec extends RetainedBackup {
    made: boolean;
    /** Position in action order. */
    seq: number;
  }
  interface Run {
    seq: number;
    action: Action;
    /** The point it made, and the records after its retention. */
    point: Rec;
    futureDated: boolean;
    /** Adopted with a provider time between the newest made backup's wall clock and now + skew. */
    plausiblyNewer: boolean;
    records: Rec[];
  }

  function simulate(actions: readonly Action[], keepLast: number): Run[] {
    let records: Rec[] = [];
    let clock = START;
    let lastMadeAt: number | null = null;
    const runs: Run[] = [];
    for (const [seq, a] of actions.entries()) {
      clock += a.step;
      const id = `bkp_${String(seq).padStart(4, '0')}`;
      let point: Rec;
      let futureDated = false;
      let plausiblyNewer = false;
      if (a.kind === 'backup') {
        point = { id, recordedAt: madeRecordedAt(records, clock), made: true, seq, parentId: null, mode: 'FULL' };
        lastMadeAt = clock;
      } else {
        const p =
          a.p === 'future'
            ? clock + PROVIDER_CLOCK_SKEW_MS + a.by
            : a.p === 'before' && lastMadeAt !== null
              ? lastMadeAt - a.by
              : clock + (a.by % (6 * YEAR)) - 3 * YEAR;
        const r = adoptedRecordedAt(records, p, clock);
        futureDated = r.futureDated;
        plausiblyNewer = lastMadeAt !== null && p >= lastMadeAt && p <= clock + PROVIDER_CLOCK_SKEW_MS;
        point = { id, recordedAt: r.recordedAt, made: false, seq, parentId: null, mode: 'FULL' };
      }
      records = [...records, point];
      const doomed = new Set(backupsToDelete(records, { keepLast, handlesChains: false }));
      records = records.filter((r) => !doomed.has(r.id));
      runs.push({ seq, action: a, point, futureDated, plausiblyNewer, records });
    }
    return runs;
  }

  const scenario = fc.record({
    actions: fc.array(action, { minLength: 1, maxLength: 40 }),
    keepLast: fc.integer({ min: 1, max: 3 }),
  });

  it("keep-last never deletes the backup Cairn just made, and keeps the most recent of Cairn's backups", () => {
    fc.assert(
      fc.property(scenario, ({ actions, keepLast }) => {
        const runs = simulate(actions, keepLast);
        const madeSeqs: number[] = [];
        for (const run of runs) {
          if (run.action.kind === 'backup') {
            madeSeqs.push(run.seq);
            expect(run.records.map((r) => r.id)).toContain(run.point.id);
          }
          // The Cairn-made records left are the last ones made, in action order.
          const left = run.records.filter((r) => r.made).map((r) => r.seq);
          expect(left).toEqual(madeSeqs.slice(madeSeqs.length - left.length));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('the newest backup Cairn made stays unless a point dated after it (and not in the future) was found since', () => {
    fc.assert(
      fc.property(scenario, ({ actions, keepLast }) => {
        let newest: Rec | undefined;
        let outranked = false;
        for (const run of simulate(actions, keepLast)) {
          if (run.action.kind === 'backup') [newest, outranked] = [run.point, false];
          else outranked ||= run.plausiblyNewer;
          if (newest && !outranked) expect(run.records.map((r) => r.id)).toContain(newest.id);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('points found dated in the future never take the place of a backup Cairn made', () => {
    const futureOnly = scenario.map(({ actions, keepLast }) => ({
      keepLast,
      actions: actions.map((a): Action => (a.kind === 'adopt' ? { ...a, p: 'future' } : a)),
    }));
    fc.assert(
      fc.property(futureOnly, ({ actions, keepLast }) => {
        let made = 0;
        for (const run of simulate(actions, keepLast)) {
          if (run.action.kind === 'backup') made++;
          else expect(run.futureDated).toBe(true);
          expect(run.records.filter((r) => r.made)).toHaveLength(Math.min(keepLast, made));
        }
      }),
      { numRuns: 500 },
    );
  });
});
