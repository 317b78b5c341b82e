import { describe, expect, it } from 'vitest';
import { isRpoBreached, rpoBreachesAfter, rpoDecision, rpoMinutesOf, rpoPassNeeded, type RpoFacts } from './rpo.js';

const MIN = 60_000;
const base: RpoFacts = { rpoMinutes: 60, lastBackupAt: null, watchedSince: 0, now: 0 };

describe('the RPO rule', () => {
  it.each<[string, Partial<RpoFacts>, boolean]>([
    ['just watched, no restore point', { now: 0 }, false],
    ['no restore point, exactly rpoMinutes since watched', { now: 60 * MIN }, false],
    ['no restore point, past rpoMinutes since watched', { now: 60 * MIN + 1 }, true],
    ['a restore point within rpoMinutes', { lastBackupAt: 100 * MIN, now: 150 * MIN }, false],
    ['a restore point older than rpoMinutes', { lastBackupAt: 10 * MIN, now: 71 * MIN }, true],
    // The restore point decides once there is one, even one older than the offering itself.
    ['an old restore point, freshly watched', { lastBackupAt: 0, watchedSince: 500 * MIN, now: 501 * MIN }, true],
    ['a restore point newer than now (clock skew)', { lastBackupAt: 10 * MIN, now: 5 * MIN }, false],
    ['a larger rpoMinutes', { rpoMinutes: 1440, lastBackupAt: 0, now: 1000 * MIN }, false],
  ])('%s', (_name, facts, breached) => {
    expect(isRpoBreached({ ...base, ...facts })).toBe(breached);
  });

  it.each<[string, Partial<RpoFacts>, boolean, string]>([
    ['breaches once', { now: 61 * MIN }, false, 'breach'],
    ['stays breached without a new event', { now: 500 * MIN }, true, 'none'],
    ['recovers with a new restore point', { lastBackupAt: 499 * MIN, now: 500 * MIN }, true, 'recover'],
    ['stays met', { lastBackupAt: 499 * MIN, now: 500 * MIN }, false, 'none'],
    [
      'recovers when the SLA is set anew on an instance without a restore point',
      { watchedSince: 490 * MIN, now: 500 * MIN },
      true,
      'recover',
    ],
  ])('%s', (_name, facts, breached, decision) => {
    expect(rpoDecision({ ...base, ...facts }, breached)).toBe(decision);
  });

  it.each<[unknown, number | null]>([
    [{ rpoMinutes: 60 }, 60],
    [{}, null],
    [null, null],
    [{ rpoMinutes: 0 }, null],
    [{ rpoMinutes: 1.5 }, null],
    [{ rpoMinutes: '60' }, null],
  ])('rpoMinutes of %j is %j', (sla, minutes) => {
    expect(rpoMinutesOf(sla as { rpoMinutes?: unknown } | null)).toBe(minutes);
  });
});

describe('when the RPO watch must read its instances', () => {
  it('breaches after the reference plus rpoMinutes, and not before, whatever the reference', () => {
    for (const facts of [
      { lastBackupAt: null, watchedSince: 7 * MIN },
      { lastBackupAt: 30 * MIN, watchedSince: 0 },
    ]) {
      const after = rpoBreachesAfter({ ...facts, rpoMinutes: 60 });
      expect(isRpoBreached({ ...base, ...facts, now: after })).toBe(false);
      expect(isRpoBreached({ ...base, ...facts, now: after + 1 })).toBe(true);
    }
  });

  const last = { at: 10 * MIN, changes: 5, breachesAfter: 70 * MIN };
  it.each<[string, number, number, boolean]>([
    ['nothing changed, nothing can breach yet', 69 * MIN, 5, false],
    ['exactly at the earliest breach (still met)', 70 * MIN, 5, false],
    ['past the earliest breach', 70 * MIN + 1, 5, true],
    ['the change mark moved', 11 * MIN, 6, true],
    ['the clock went back', 9 * MIN, 5, true],
  ])('%s', (_name, now, changes, needed) => {
    expect(rpoPassNeeded(last, now, changes, 100 * MIN)).toBe(needed);
  });

  it('once the bound between passes is reached, whatever else holds', () => {
    expect(rpoPassNeeded(last, 19 * MIN, 5, 10 * MIN)).toBe(false);
    expect(rpoPassNeeded(last, 20 * MIN, 5, 10 * MIN)).toBe(true);
  });

  it('always on the first pass', () => {
    expect(rpoPassNeeded(undefined, 0, 0, 10 * MIN)).toBe(true);
  });
});
