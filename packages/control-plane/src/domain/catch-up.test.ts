import fc from 'fast-check';
import { Cron } from 'croner';
import { describe, expect, it } from 'vitest';
import { cronCalendar, nextAfter } from '../service/cron.js';
import { dueFire, firesIn, nextFire } from './schedule.js';

/** The reference: croner walked fire by fire from `since` to `now`. */
function bruteForce(cron: string, timezone: string, since: number, now: number) {
  const next = nextAfter(cron, timezone);
  let count = 0;
  let last: number | null = null;
  for (let t = next(since); t !== null && t <= now; t = next(t)) {
    count++;
    last = t;
    if (count > 200_000) throw new Error('reference scan too long');
  }
  return count === 0 ? null : { fireAt: last!, missed: count - 1 };
}

const EXPRESSIONS = [
  '* * * * *',
  '*/7 * * * * *',
  '0 * * * *',
  '*/15 * * * *',
  '0 3 * * *',
  '30 2 * * *',
  '0 30 2 * * *',
  '15 1 * * *',
  '0 */20 2 * * *',
  '*/20 1-3 * * *',
  '0 0 * * *',
  '0 9-17 * * MON-FRI',
  '0 0 * * 1-5',
  '0 12 L * *',
  '0 6 * * 5L',
  '0 8 * * 4#2',
  '0 0 1 * *',
  '5 4 29 * *',
  '0 0 1,15 * 1',
  '*/45 23,0 * * *',
  '59 23 * * SUN',
  '0 0 1 1 *',
  '17 3 * 2,3,10,11 *',
];
const DENSE: Record<string, number> = {
  '* * * * *': 6 * 3_600_000,
  '*/7 * * * * *': 3_600_000,
  '*/15 * * * *': 86_400_000,
};
const ZONES = [
  'UTC',
  'Europe/Paris',
  'America/New_York',
  'Australia/Lord_Howe',
  'Asia/Kathmandu',
  'America/Santiago',
  'Africa/Casablanca',
  'Pacific/Chatham',
];

describe('catch-up arithmetic against a croner scan', () => {
  // Around 2024-2026, with the daylight saving changes of the zones above inside.
  const from = Date.parse('2024-01-01T00:00:00Z');
  const to = Date.parse('2026-12-31T00:00:00Z');

  it('counts the same fires as croner, fire by fire, over random spans', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...EXPRESSIONS),
        fc.constantFrom(...ZONES),
        fc.integer({ min: from, max: to }),
        // Up to ~3 days (a few hours for the densest): long enough to cross days and changes, short
        // enough to scan by croner.
        fc.double({ min: 0, max: 1, noNaN: true }),
        (cron, tz, since, share) => {
          const now = since + Math.floor(share * (DENSE[cron] ?? 3 * 86_400_000));
          expect(dueFire(cronCalendar(cron, tz), since, now), `${cron} ${tz} ${since}..${now}`).toEqual(
            bruteForce(cron, tz, since, now),
          );
          expect(nextFire(cronCalendar(cron, tz), now), `next ${cron} ${tz} ${now}`).toBe(nextAfter(cron, tz)(now));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('spans that start or end on a daylight saving change, to the second', () => {
    const changes = [
      ['Europe/Paris', '2024-03-31T01:00:00Z'],
      ['Europe/Paris', '2024-10-27T01:00:00Z'],
      ['America/New_York', '2024-03-10T07:00:00Z'],
      ['America/New_York', '2024-11-03T06:00:00Z'],
      ['Australia/Lord_Howe', '2024-04-06T15:00:00Z'],
      ['America/Santiago', '2024-04-07T03:00:00Z'],
    ] as const;
    for (const [tz, at] of changes)
      for (const cron of EXPRESSIONS)
        for (const d of [-3_600_000, -1000, -1, 0, 1, 1000, 1_800_000]) {
          const c = Date.parse(at) + d;
          for (const [since, now] of DENSE[cron]
            ? ([[c - 1_200_000, c + 1_200_000]] as const)
            : ([
                [c - 86_400_000, c],
                [c, c + 86_400_000],
                [c - 7_200_000, c + 7_200_000],
              ] as const))
            expect(dueFire(cronCalendar(cron, tz), since, now), `${cron} ${tz} ${since}..${now}`).toEqual(
              bruteForce(cron, tz, since, now),
            );
        }
  });

  it('a year of downtime is counted exactly, in a bounded number of day look-ups', () => {
    for (const cron of ['* * * * *', '0 9-17 * * MON-FRI', '0 12 L * *', '0 0 1 1 *'])
      for (const tz of ['UTC', 'Europe/Paris', 'America/Santiago']) {
        const cal = cronCalendar(cron, tz);
        let lookups = 0;
        const counted = { ...cal, nextFireDay: (d: number) => (lookups++, cal.nextFireDay(d)) };
        const since = Date.parse('2024-02-10T10:00:00Z');
        const now = since + 366 * 86_400_000;
        const due = dueFire(counted, since, now);
        // A day each, and about two per daylight saving change (two a year here).
        expect(lookups).toBeLessThanOrEqual(366 + 1 + 2 * 3);
        // The reference: fires per day of the year by croner, fire by fire, only where cheap.
        if (cron !== '* * * * *') expect(due).toEqual(bruteForce(cron, tz, since, now));
        else expect(due!.missed + 1).toBe(firesIn(cal, since / 1000 + 1, now / 1000).count);
      }
  });

  it('croner 11 keeps the time-of-day sets on its parsed pattern, as cronCalendar reads them', () => {
    const c = new Cron('5,10 */20 9-17 * * MON-FRI', { paused: true });
    const patternOf = (x: Cron) => (x as unknown as { _states: { pattern: Record<string, unknown> } })._states.pattern;
    const p = patternOf(c);
    const on = (a: unknown) => (a as number[]).flatMap((v, i) => (v ? [i] : []));
    expect(on(p.second)).toEqual([5, 10]);
    expect(on(p.minute)).toEqual([0, 20, 40]);
    expect(on(p.hour)).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(p.isFixedTime).toBe(false);
    expect(patternOf(new Cron('0 30 2 * * *', { paused: true })).isFixedTime).toBe(true);
    const cal = cronCalendar('5,10 */20 9-17 * * MON-FRI', 'UTC');
    expect(cal.hours.filter(Boolean)).toHaveLength(9);
  });
});
