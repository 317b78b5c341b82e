import { describe, expect, it } from 'vitest';
import { isRpoBreached, rpoDecision, rpoMinutesOf, type RpoFacts } from './rpo.js';

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
