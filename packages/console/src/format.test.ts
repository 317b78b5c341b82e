import { describe, expect, it } from 'vitest';
import { bytes, duration, outcomes, protection, rate, rateBetween } from './format.js';

describe('how the console writes figures', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [10 * 1024 * 1024, '10 MiB'],
    [5.25 * 1024 ** 4, '5.3 TiB'],
    [-1, '–'],
    [Number.NaN, '–'],
    [null, '–'],
  ])('bytes(%s) is %s', (n, text) => expect(bytes(n)).toBe(text));

  it.each([
    [0, '0 s'],
    [42, '42 s'],
    [185, '3 min 05 s'],
    [3720, '1 h 02 min'],
    [null, '–'],
    [-5, '–'],
  ])('duration(%s) is %s', (s, text) => expect(duration(s)).toBe(text));

  it('measures a rate between two reports, and tells none when it cannot', () => {
    expect(rateBetween({ bytesDone: 0, at: 1000 }, { bytesDone: 2 * 1024 * 1024, at: 2000 })).toBe(2 * 1024 * 1024);
    expect(rate(2 * 1024 * 1024)).toBe('2.0 MiB/s');
    expect(rateBetween(undefined, { bytesDone: 5, at: 1 })).toBeUndefined();
    expect(rateBetween({ bytesDone: 5, at: 2000 }, { bytesDone: 9, at: 2000 })).toBeUndefined();
    expect(rateBetween({ bytesDone: 9, at: 1000 }, { bytesDone: 5, at: 2000 })).toBeUndefined();
    expect(rate(undefined)).toBe('–');
  });

  it('counts the outcomes of tasks that ended since a time, and nothing still running or older', () => {
    const since = Date.parse('2026-01-02T00:00:00Z');
    const counts = outcomes(
      [
        { state: 'succeeded', endedAt: '2026-01-02T01:00:00Z' },
        { state: 'succeeded', endedAt: '2026-01-02T02:00:00Z' },
        { state: 'failed', endedAt: '2026-01-02T03:00:00Z' },
        { state: 'failed', endedAt: '2026-01-01T23:59:59Z' },
        { state: 'running', endedAt: null },
      ],
      since,
    );
    expect(counts).toEqual({ succeeded: 2, failed: 1 });
  });

  it('adds up the protection figures of every tenant read', () => {
    expect(protection([])).toEqual({ protectedInstances: 0, unprotectedInstances: 0, rpoBreachedInstances: 0 });
    expect(
      protection([
        { protectedInstances: 3, unprotectedInstances: 1, rpoBreachedInstances: 1 },
        { protectedInstances: 2, unprotectedInstances: 0, rpoBreachedInstances: 2 },
      ]),
    ).toEqual({ protectedInstances: 5, unprotectedInstances: 1, rpoBreachedInstances: 3 });
  });
});
