import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenBucket } from './rate-limit.js';
import {
  boundJson,
  boundText,
  jsonDepth,
  WireViolation,
  wireAttempt,
  wireCount,
  wirePercent,
  wireSeq,
  wireTime,
  WIRE_LIMITS,
} from './wire-limits.js';

const NOW = 1_750_000_000_000;

describe('numbers from the wire', () => {
  it.each([2 ** 63 - 1, -1, NOW + WIRE_LIMITS.clockAheadMs + 1, NOW - WIRE_LIMITS.reportAgeMs - 1, 1.5, Number.NaN])(
    'refuses the time %s',
    (v) => expect(() => wireTime('at_ms', v, NOW)).toThrow(WireViolation),
  );

  it('takes a sane time, and 0 as now', () => {
    expect(wireTime('at_ms', NOW - 1000, NOW)).toBe(NOW - 1000);
    expect(wireTime('at_ms', 0, NOW)).toBe(NOW);
  });

  it('refuses NaN, negative and out-of-range percent, counts, seqs and attempts', () => {
    for (const v of [Number.NaN, -0.1, 100.1, Number.POSITIVE_INFINITY])
      expect(() => wirePercent(v)).toThrow(/percent/);
    for (const v of [-1, 2 ** 53, 0.5]) expect(() => wireCount('bytes_done', v)).toThrow(/bytes_done/);
    for (const v of [0, -1, 2 ** 53]) expect(() => wireSeq(v)).toThrow(/spool_seq/);
    for (const v of [0, 2 ** 31]) expect(() => wireAttempt(v)).toThrow(/attempt/);
    expect(wirePercent(100)).toBe(100);
    expect(wireCount('bytes_done', 2 ** 53 - 1)).toBe(2 ** 53 - 1);
  });
});

describe('text and JSON from the wire', () => {
  it('cuts text to the byte limit at a character boundary and says how much was cut', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 3000 }), fc.integer({ min: 64, max: 4096 }), (s, max) => {
        const out = boundText(s, max);
        const bytes = Buffer.byteLength(s);
        if (bytes <= max) return out === s;
        const m = /… \[(\d+) bytes cut\]$/.exec(out);
        const kept = out.slice(0, out.length - m![0].length);
        return (
          Buffer.byteLength(out) <= max &&
          s.startsWith(kept) &&
          Buffer.byteLength(kept) + Number(m![1]) === bytes &&
          !kept.includes('\uFFFD')
        );
      }),
    );
  });

  it('replaces JSON over the size or depth limit with a note, and wraps text that is not JSON', () => {
    expect(boundJson('event data', '')).toBeNull();
    expect(boundJson('event data', '{"a":1}')).toBe('{"a":1}');
    expect(JSON.parse(boundJson('event data', 'not json')!)).toEqual({ unparsed: 'not json' });
    const big = JSON.parse(boundJson('event data', JSON.stringify({ s: 'é'.repeat(40_000) }))!);
    expect(big).toMatchObject({ cairnTruncated: true, field: 'event data' });
    expect(big.reason).toMatch(/80\d{3} bytes; the limit is 60000/);
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    expect(JSON.parse(boundJson('event data', deep)!).reason).toMatch(/nested 5000 deep/);
  });

  it('measures depth outside strings only', () => {
    expect(jsonDepth('{"a":"[[[[","b":[{"c":"\\"{"}]}')).toBe(3);
  });
});

describe('token bucket', () => {
  it('passes a burst up to its capacity, then the refill rate', () => {
    const b = new TokenBucket(100, 10, 0);
    let passed = 0;
    for (let i = 0; i < 50; i++) if (b.take(0)) passed++;
    expect(passed).toBe(10);
    expect(b.take(5)).toBe(false); // half a token
    expect(b.take(10)).toBe(true);
    expect(b.available(10_000)).toBe(10);
  });

  it('never trips a sender that keeps inside half the rate and a quarter of the burst', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 400 }), (gaps) => {
        const server = new TokenBucket(200, 2000, 0);
        const sender = new TokenBucket(100, 500, 0);
        let t = 0;
        for (const gap of gaps) {
          t += gap;
          while (sender.take(t)) if (!server.take(t)) return false;
        }
        return true;
      }),
    );
  });
});
