import { describe, expect, it } from 'vitest';
import {
  deletionVictim,
  missingForTrait,
  PLUGIN_NAME,
  progressProblem,
  summarize,
  undeclaredHostUse,
} from './rules.js';

describe('progressProblem', () => {
  it.each([
    [[10, 50, 100], true, undefined],
    [[0, 0, 100, 100], true, undefined],
    [[], false, undefined],
    [[], true, 'reported no progress'],
    [[20, 60, 40, 100], true, 'progress went backwards: 40 % after 60 %'],
    [[20, 60, 40], false, 'progress went backwards: 40 % after 60 %'],
    [[20, 80], true, 'progress ended at 80 %, not 100 %'],
    [[20, 80], false, undefined],
  ])('%j (complete: %s) → %s', (percents, complete, problem) => {
    expect(progressProblem(percents, { complete })).toBe(problem);
  });
});

describe('deletionVictim', () => {
  const a = { externalId: 'a' };
  const b = { externalId: 'b', parentExternalId: 'a' };
  const c = { externalId: 'c', parentExternalId: 'b' };
  const full = { externalId: 'f' };

  it('takes the oldest point, as retention does, when nothing builds on it', () => {
    expect(deletionVictim([a, full], false)).toBe(a);
  });

  it('keeps every base an increment needs, unless the plugin handles chains', () => {
    expect(deletionVictim([a, b, c], false)).toBe(c);
    expect(deletionVictim([a, b, full], false)).toBe(b);
    expect(deletionVictim([a, b, c], true)).toBe(a);
    expect(deletionVictim([], true)).toBeUndefined();
  });
});

describe('traits and names', () => {
  it('says which operations a trait needs', () => {
    expect(missingForTrait('restore-requires-stopped', ['backup', 'restore', 'restore-requires-stopped'])).toEqual([
      'power-state',
    ]);
    expect(missingForTrait('restore-to-path', ['backup', 'restore', 'restore-to-path'])).toEqual([]);
    expect(missingForTrait('provider-schedules', ['backup'])).toEqual(['configure-schedule', 'deconfigure-schedule']);
  });

  it.each([
    ['cairn-plugin-restic', true],
    ['@acme/cairn-plugin-vmware', true],
    ['@cairn/plugin-dummy', false],
    ['restic', false],
    ['cairn-plugin-', false],
  ])('%s follows the naming convention: %s', (name, ok) => {
    expect(PLUGIN_NAME.test(name)).toBe(ok);
  });

  it('summarizes problems', () => {
    expect(summarize(['a', 'b', 'c', 'd', 'e'])).toBe('a; b; c (and 2 more)');
    expect(summarize(['a'])).toBe('a');
  });
});

describe('undeclaredHostUse', () => {
  it.each([
    [{ locatorNamesDir: true, backupRead: true, restoredOnHost: false }, /and its backup read the files there, but/],
    [{ locatorNamesDir: true, backupRead: false, restoredOnHost: true }, /and its restores wrote them back into/],
    [{ locatorNamesDir: true, backupRead: undefined, restoredOnHost: true }, /and its restores wrote them back into/],
    [{ locatorNamesDir: true, backupRead: true, restoredOnHost: true }, /read the files there and its restores wrote/],
    [{ locatorNamesDir: true, backupRead: false, restoredOnHost: false }, undefined],
    [{ locatorNamesDir: true, backupRead: undefined, restoredOnHost: false }, undefined],
    // A locator that names no host path: whatever the plugin does with the sample, the kit cannot blame the locator.
    [{ locatorNamesDir: false, backupRead: true, restoredOnHost: true }, undefined],
  ])('%j → %s', (use, problem) => {
    const got = undeclaredHostUse(use);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(problem);
    if (got) expect(got).toContain('does not declare host-paths');
  });
});
