import { describe, expect, it } from 'vitest';
import { GoneError } from './errors.js';
import { checkEventsKept, historyCuts, markAtOrBefore, taskForgettable, type HistoryMark } from './history.js';

const DAY = 86_400_000;
const limits = { taskMs: 30 * DAY, progressMs: 7 * DAY, eventMs: 90 * DAY };
const mark = (day: number, lastEventId: number, lastProgressId: number): HistoryMark => ({
  at: day * DAY,
  lastEventId,
  lastProgressId,
});

describe('history limits', () => {
  it('cuts each log at the newest mark at least its limit old, and nothing before the first such mark', () => {
    const marks = [mark(0, 10, 100), mark(5, 20, 200), mark(60, 30, 300), mark(100, 40, 400)];
    // Day 6: no mark is 7 days old yet (nothing goes); day 7: the first is.
    expect(historyCuts(marks, 6 * DAY, limits)).toMatchObject({ eventsThrough: 0, progressThrough: 0 });
    expect(historyCuts(marks, 7 * DAY, limits)).toMatchObject({ eventsThrough: 0, progressThrough: 100 });
    // Day 66: the mark of day 60 is only 6 days old: progress is cut at day 5's, events at none.
    expect(historyCuts(marks, 66 * DAY, limits)).toMatchObject({ eventsThrough: 0, progressThrough: 200 });
    expect(historyCuts(marks, 67 * DAY, limits)).toMatchObject({ eventsThrough: 0, progressThrough: 300 });
    // Day 151: events at day 60's mark (91 days old), progress at day 100's.
    const late = historyCuts(marks, 151 * DAY, limits);
    expect(late).toMatchObject({ eventsThrough: 30, progressThrough: 400, tasksEndedBefore: 121 * DAY });
    // The marks older than the older of the two in use go; none while a cut has no mark yet.
    expect(late.marksBefore).toBe(60 * DAY);
    expect(historyCuts(marks, 70 * DAY, limits).marksBefore).toBe(Number.NEGATIVE_INFINITY);
  });

  it('a gap between marks keeps history longer, never shorter', () => {
    // Down from day 1 to day 50: the next mark after day 0 is day 50's.
    const marks = [mark(0, 10, 100), mark(50, 90, 900)];
    expect(markAtOrBefore(marks, 49 * DAY)).toEqual(marks[0]);
    expect(historyCuts(marks, 56 * DAY, limits).progressThrough).toBe(100);
    expect(historyCuts(marks, 57 * DAY, limits).progressThrough).toBe(900);
    expect(markAtOrBefore([], 1e15)).toBeUndefined();
  });

  it('forgets a task only once it ended, its limit after its end (its creation when it has none)', () => {
    const before = 100;
    for (const state of ['queued', 'dispatched', 'running'])
      expect(taskForgettable({ state, createdAt: 0, endedAt: null }, before), state).toBe(false);
    for (const state of ['succeeded', 'failed', 'cancelled', 'lost']) {
      expect(taskForgettable({ state, createdAt: 0, endedAt: 99 }, before), state).toBe(true);
      expect(taskForgettable({ state, createdAt: 0, endedAt: 100 }, before), state).toBe(false);
      expect(taskForgettable({ state, createdAt: 99, endedAt: null }, before), state).toBe(true);
      expect(taskForgettable({ state, createdAt: 100, endedAt: null }, before), state).toBe(false);
    }
  });

  it('refuses a read resuming after a forgotten event, naming where the kept log begins', () => {
    expect(() => checkEventsKept(0, 50)).not.toThrow();
    expect(() => checkEventsKept(50, 50)).not.toThrow();
    expect(() => checkEventsKept(51, 50)).not.toThrow();
    expect(() => checkEventsKept(7, 0)).not.toThrow();
    let err: unknown;
    try {
      checkEventsKept(49, 50);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GoneError);
    expect(err).toMatchObject({ status: 410, code: 'events_forgotten', extensions: { after: 50 } });
  });
});
