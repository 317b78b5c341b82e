import { describe, expect, it } from 'vitest';
import { nextAfter } from '../service/cron.js';
import { dueFire, fireSince, isKnownTimezone, planFire } from './schedule.js';

const t = (iso: string) => Date.parse(iso);
const hourly = nextAfter('0 * * * *', 'UTC');
const berlin3am = nextAfter('0 3 * * *', 'Europe/Berlin');

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
    expect(dueFire(() => null, 0, t('2030-01-01T00:00:00Z'))).toBeNull();
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
