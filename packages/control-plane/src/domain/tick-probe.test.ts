import { describe, expect, it } from 'vitest';
import { probeNeeded, type ProbeSeen } from './tick-probe.js';

// Asked at elapsed 1,000 ms with version 7; the earliest fire known at clock 60,000.
const SEEN: ProbeSeen = { askedAtMs: 1_000, version: 7, anyDue: false, earliest: 60_000, changes: 3 };
const REFRESH = 5_000;

describe('probeNeeded', () => {
  it.each([
    ['nothing asked yet', undefined, 10_000, 1_000, 7, true],
    ['nothing changed, no fire come, asked 4.999 s ago', SEEN, 59_999, 5_999, 7, false],
    ['this process committed a change since', SEEN, 10_000, 1_500, 8, true],
    ['the earliest known fire time has come', SEEN, 60_000, 1_500, 7, true],
    ['the clock passed it', SEEN, 61_000, 1_500, 7, true],
    ['the last ask is the refresh interval old', SEEN, 10_000, 6_000, 7, true],
    ['the last ask found something due (the tick fired)', { ...SEEN, anyDue: true }, 10_000, 1_001, 7, true],
    ['no schedule will ever fire, nothing changed', { ...SEEN, earliest: Infinity }, 9e15, 5_999, 7, false],
  ] as const)('%s → %s', (_, seen, now, elapsed, version, want) => {
    expect(probeNeeded(seen, now, elapsed, version, REFRESH)).toBe(want);
  });

  it('asks at every tick with a refresh interval of 0', () => {
    expect(probeNeeded(SEEN, 10_000, 1_000, 7, 0)).toBe(true);
  });

  it('does not take a clock set back for a change (no fire comes sooner for it)', () => {
    expect(probeNeeded(SEEN, 0, 1_500, 7, REFRESH)).toBe(false);
  });
});
