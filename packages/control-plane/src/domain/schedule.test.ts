import { describe, expect, it } from 'vitest';
import { checkSchedule, cronCalendar, nextAfter } from '../service/cron.js';
import {
  cadence,
  dueFire,
  fireSince,
  floorProblem,
  isKnownTimezone,
  jobScheduleFloor,
  CADENCE_HORIZON_MS,
  MAX_FIRE_GAP_MS,
  planFire,
  USER_SCHEDULE_FLOOR_S,
  utcOffsetChanges,
  type NextAfter,
} from './schedule.js';

const t = (iso: string) => Date.parse(iso);
const hourly = cronCalendar('0 * * * *', 'UTC');
const berlin3am = cronCalendar('0 3 * * *', 'Europe/Berlin');

describe('dueFire', () => {
  it.each([
    // [what, next, since, now, expected]
    ['not yet', hourly, '2026-03-01T10:00:00Z', '2026-03-01T10:59:59.999Z', null],
    ['exactly at the fire time', hourly, '2026-03-01T10:00:00Z', '2026-03-01T11:00:00Z', ['2026-03-01T11:00:00Z', 0]],
    ['a little late', hourly, '2026-03-01T10:00:00Z', '2026-03-01T11:00:05Z', ['2026-03-01T11:00:00Z', 0]],
    ['the claimed fire is not due again', hourly, '2026-03-01T11:00:00Z', '2026-03-01T11:30:00Z', null],
    [
      'three fire times missed run once',
      hourly,
      '2026-03-01T10:00:00Z',
      '2026-03-01T13:30:00Z',
      ['2026-03-01T13:00:00Z', 2],
    ],
    ['a day missed', hourly, '2026-03-01T10:00:00Z', '2026-03-02T10:00:00Z', ['2026-03-02T10:00:00Z', 23]],
    [
      'before DST in Berlin: 03:00 CET is 02:00Z',
      berlin3am,
      '2026-03-27T12:00:00Z',
      '2026-03-28T02:00:00Z',
      ['2026-03-28T02:00:00Z', 0],
    ],
    [
      'after DST: 03:00 CEST is 01:00Z',
      berlin3am,
      '2026-03-28T02:00:00Z',
      '2026-03-29T01:00:00Z',
      ['2026-03-29T01:00:00Z', 0],
    ],
    ['after DST, not at the old offset', berlin3am, '2026-03-28T02:00:00Z', '2026-03-29T00:59:59Z', null],
  ] as const)('%s', (_what, next, since, now, expected) => {
    const due = dueFire(next, t(since), t(now));
    expect(due).toEqual(expected === null ? null : { fireAt: t(expected[0]), missed: expected[1] });
  });

  it('an expression with no more fire times is never due', () => {
    const never = { ...hourly, nextFireDay: () => null };
    expect(dueFire(never, 0, t('2030-01-01T00:00:00Z'))).toBeNull();
  });
});

describe('fireSince', () => {
  it.each([
    [undefined, 100, 100],
    [50, 100, 100], // a schedule set again after its last fire counts from the new setting
    [200, 100, 200],
  ])('last fire %s, set at %s → %s', (last, setAt, expected) => {
    expect(fireSince(last, setAt)).toBe(expected);
  });
});

describe('planFire', () => {
  it.each([
    [{ kind: 'sla', activeBackupTaskId: undefined, userSchedulesAllowed: false }, 'backup'],
    [{ kind: 'user', activeBackupTaskId: undefined, userSchedulesAllowed: true }, 'backup'],
    [{ kind: 'sla', activeBackupTaskId: 'tsk_1', userSchedulesAllowed: false }, 'skip'],
    [{ kind: 'user', activeBackupTaskId: 'tsk_1', userSchedulesAllowed: true }, 'skip'],
    [{ kind: 'user', activeBackupTaskId: undefined, userSchedulesAllowed: false }, 'skip'],
  ] as const)('%o → %s', (input, action) => {
    expect(planFire(input).action).toBe(action);
  });

  it('names the still-running task when it skips', () => {
    expect(planFire({ kind: 'sla', activeBackupTaskId: 'tsk_9', userSchedulesAllowed: false })).toMatchObject({
      reason: expect.stringContaining('tsk_9'),
    });
  });

  it('skips at a quota with its message and name', () => {
    const quota = { quota: 'restorePointsPerOffering', limit: 1, used: 1, adding: 1, message: 'at the limit' } as const;
    expect(planFire({ kind: 'user', activeBackupTaskId: undefined, userSchedulesAllowed: true, quota })).toEqual({
      action: 'skip',
      reason: 'at the limit',
      quota: 'restorePointsPerOffering',
    });
  });
});

describe('isKnownTimezone', () => {
  it.each([
    ['UTC', true],
    ['Europe/Berlin', true],
    ['America/New_York', true],
    ['Mars/Olympus_Mons', false],
    ['', false],
    ['x'.repeat(101), false],
  ])('%s → %s', (tz, known) => {
    expect(isKnownTimezone(tz)).toBe(known);
  });
});

describe('cadence', () => {
  const from = t('2026-12-02T10:17:03Z');
  const H = 3_600_000;

  it.each([
    ['* * * * * *', 'UTC', 1000],
    ['*/5 * * * *', 'UTC', 300_000],
    ['0 */6 * * *', 'UTC', 6 * H],
    ['*/7 * * * *', 'UTC', 4 * 60_000], // :56 to the next hour's :00
    ['0 0 1,22 * * *', 'UTC', 3 * H], // 22:00 to 01:00 the next day
    ['0 0 0 * * 1,2', 'UTC', 24 * H],
  ])('the shortest gap of %s in %s is %s ms', (cron, tz, gap) => {
    expect(cadence(nextAfter(cron, tz), from).shortestGapMs).toBe(gap);
  });

  const berlin = utcOffsetChanges('Europe/Berlin', from, from + CADENCE_HORIZON_MS);

  it('finds the daylight saving changes of a zone to the hour; none in UTC', () => {
    const exact = [t('2027-03-28T01:00:00Z'), t('2027-10-31T01:00:00Z')];
    expect(berlin).toHaveLength(2);
    berlin.forEach((c, i) => expect(c - exact[i]!).toBeGreaterThanOrEqual(0));
    berlin.forEach((c, i) => expect(c - exact[i]!).toBeLessThan(H));
    expect(utcOffsetChanges('UTC', from, from + CADENCE_HORIZON_MS)).toEqual([]);
  });

  it.each([
    ['0 3 * * *', 23 * H, 25 * H],
    ['0 0 2,4 * * *', H, 23 * H], // 02:00 to 04:00 is one hour on the spring change
    ['0 * * * *', H, H], // croner fires the autumn's repeated 02:00 twice
  ])('sees the daylight saving changes of %s in Europe/Berlin', (cron, shortest, longest) => {
    expect(cadence(nextAfter(cron, 'Europe/Berlin'), from, berlin)).toEqual({
      shortestGapMs: shortest,
      longestWaitMs: longest,
    });
  });

  it('a daily schedule in UTC is 24 h apart throughout', () => {
    expect(cadence(nextAfter('0 3 * * *', 'UTC'), from)).toEqual({ shortestGapMs: 24 * H, longestWaitMs: 24 * H });
  });

  it('calls `next` a bounded number of times, whatever the expression', () => {
    for (const cron of ['* * * * * *', '*/15 * * * *', '0 * * * *', '0 3 * * *', '0 0 1 1 *']) {
      let calls = 0;
      const next = nextAfter(cron, 'Europe/Berlin');
      cadence((ms) => (calls++, next(ms)), from, berlin);
      expect(calls, cron).toBeLessThanOrEqual(98 + 12 * 5 + 2 * (5 + 27));
    }
  });

  it('stops at the first gap below the floor it is given', () => {
    let calls = 0;
    const next = nextAfter('* * * * *', 'UTC');
    expect(cadence((ms) => (calls++, next(ms)), from, [], 900_000).shortestGapMs).toBe(60_000);
    expect(calls).toBe(2);
  });

  it('stops at a wait over a year, and at an expression with no more fires', () => {
    const never: NextAfter = () => null;
    expect(cadence(never, from)).toEqual({ shortestGapMs: null, longestWaitMs: Infinity });
    const yearly = nextAfter('0 0 1 1 *', 'UTC');
    expect(cadence(yearly, from).longestWaitMs).toBeLessThanOrEqual(MAX_FIRE_GAP_MS);
  });
});

describe('checkSchedule', () => {
  const now = t('2026-12-02T10:17:03Z');
  const cronProblem = (cron: string, at = now, floorS?: number) =>
    checkSchedule(cron, 'UTC', at, floorS === undefined ? {} : { floorS });

  it.each([
    ['0 0 0 ? 2 4#5', now], // the fifth Thursday of February: once in 28 years
    ['0 0 29 2 *', now], // a leap day: every 4 years
    ['0 0 29 2 *', t('2028-02-28T12:00:00Z')], // the day before one: the next is 4 years on
    ['0 0 30 2 *', now], // never
  ])('refuses %s (from %s): it does not fire at least once a year', (cron, at) => {
    const { problems, tooFrequent } = cronProblem(cron, at);
    expect(tooFrequent).toBe(false);
    expect(problems).toEqual([{ path: 'cron', message: expect.stringMatching(/once (a year|in any 366 days)/) }]);
  });

  it('takes a yearly and a weekly expression; names a syntax error and an unknown zone', () => {
    expect(cronProblem('0 0 1 1 *').problems).toEqual([]);
    expect(cronProblem('0 2 * * 0').problems).toEqual([]);
    expect(cronProblem('61 * * * *').problems[0]).toMatchObject({ path: 'cron' });
    expect(checkSchedule('0 2 * * *', 'Nowhere/Land', now, { prefix: 'sla.' }).problems).toEqual([
      { path: 'sla.timezone', message: 'unknown IANA time zone "Nowhere/Land"' },
    ]);
  });

  it('judges with the year-bounded expression as croner does without the bound', () => {
    const bounded = checkSchedule('0 3 * * *', 'Europe/Berlin', now).cadence;
    expect(bounded).toEqual(
      cadence(
        nextAfter('0 3 * * *', 'Europe/Berlin'),
        now,
        utcOffsetChanges('Europe/Berlin', now, now + CADENCE_HORIZON_MS),
      ),
    );
    expect(bounded?.shortestGapMs).toBe(23 * 3_600_000);
  });

  it('refuses a schedule firing more often than the floor, naming both', () => {
    const { problems, tooFrequent } = cronProblem('* * * * *', now, 900);
    expect(tooFrequent).toBe(true);
    expect(problems).toEqual([
      { path: 'cron', message: 'fires 60 s apart at the closest; the floor here is one fire every 900 s' },
    ]);
    expect(cronProblem('*/15 * * * *', now, 900).problems).toEqual([]);
    expect(cronProblem('* * * * *', now, 60).problems).toEqual([]);
  });
});

describe('schedule floors', () => {
  it('a job takes the strictest floor of its offerings, the default when none has one', () => {
    expect(jobScheduleFloor([60, 3600, 900])).toBe(3600);
    expect(jobScheduleFloor([])).toBe(USER_SCHEDULE_FLOOR_S.default);
  });

  it('no gap seen is no problem', () => {
    expect(floorProblem({ shortestGapMs: null, longestWaitMs: 0 }, 900)).toBeUndefined();
  });
});
