import { describe, expect, it } from 'vitest';
import { iso } from './views.js';

describe('iso', () => {
  it('writes every time as Date.prototype.toISOString does', () => {
    const edges = [
      0,
      1,
      999,
      Date.UTC(1972, 1, 29, 12),
      Date.UTC(2000, 1, 29, 23, 59, 59, 999),
      Date.UTC(2000, 2, 1),
      Date.UTC(2100, 1, 28, 23, 59, 59, 999),
      Date.UTC(2100, 2, 1),
      Date.UTC(2026, 11, 31, 23, 59, 59, 999),
      Date.UTC(2027, 0, 1),
      253_402_300_799_999,
    ];
    // A fixed spread over 1970-9999 (no randomness: a failure names the same time again).
    const spread = Array.from({ length: 20_000 }, (_, i) => Math.floor((i * 253_402_300_799_999) / 19_999) - (i % 997));
    for (const ms of [...edges, ...spread].filter((x) => x >= 0))
      expect(iso(ms), String(ms)).toBe(new Date(ms).toISOString());
  });

  it('leaves a time outside 1970-9999, or not a whole millisecond, to Date', () => {
    expect(iso(-1)).toBe('1969-12-31T23:59:59.999Z');
    expect(iso(253_402_300_800_000)).toBe('+010000-01-01T00:00:00.000Z');
    expect(iso(1.5)).toBe('1970-01-01T00:00:00.001Z');
    expect(() => iso(Number.NaN)).toThrow(RangeError);
  });
});
