import { describe, expect, it } from 'vitest';
import { validateManifest } from './manifest-check.js';
import { OPERATIONS } from './manifest.js';

const good = {
  name: 'cairn-plugin-x',
  version: '1.0.0',
  apiVersion: 1,
  capabilities: ['backup'],
  configSchema: { type: 'object' },
};

describe('validateManifest', () => {
  it.each([
    ['no manifest at all', undefined, /^has no manifest object$/],
    ['an array', [good], /^has no manifest object$/],
    ['an empty name', { ...good, name: '' }, /^invalid manifest: name: must not be empty$/],
    ['no version', { ...good, version: undefined }, /^invalid manifest: version: must be a string$/],
    ['a fractional API version', { ...good, apiVersion: 1.5 }, /apiVersion: must be a positive integer/],
    ['API version 0', { ...good, apiVersion: 0 }, /apiVersion: must be a positive integer/],
    ['a bad extra API version', { ...good, apiVersions: [1, '2'] }, /apiVersions\.1: must be a positive integer/],
    [
      'an unknown capability',
      { ...good, capabilities: ['backup', 'teleport'] },
      /capabilities\.1: "teleport" is not one of backup, restore/,
    ],
    ['no capabilities', { ...good, capabilities: [] }, /capabilities: must list at least one operation/],
    [
      'only a trait and no operation',
      { ...good, capabilities: ['handles-chains'] },
      /capabilities: must list at least one operation/,
    ],
    ['capabilities that are not a list', { ...good, capabilities: 'backup' }, /capabilities: must be an array/],
    ['no config schema', { ...good, configSchema: undefined }, /configSchema: must be an object/],
    ['a config schema that is a string', { ...good, configSchema: 'object' }, /configSchema: must be an object/],
    ['a description that is not text', { ...good, description: 3 }, /description: must be a string/],
  ])('refuses a manifest with %s', (_what, manifest, problem) => {
    const check = validateManifest(manifest, [1]);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.problem).toMatch(problem);
  });

  it.each([
    ['handles-chains', ['backup', 'delete-backup', 'handles-chains']],
    ['provider-schedules', ['backup', 'configure-schedule', 'deconfigure-schedule', 'provider-schedules']],
    ['incremental', ['backup', 'incremental']],
    ['restore-to-path', ['backup', 'restore', 'restore-to-path']],
  ])('accepts the %s trait beside operations', (_trait, capabilities) => {
    const check = validateManifest({ ...good, capabilities }, [1]);
    expect(check).toMatchObject({ ok: true, manifest: { capabilities } });
  });

  it('names every problem at once', () => {
    const check = validateManifest({ ...good, name: '', capabilities: [] }, [1]);
    expect(check).toEqual({
      ok: false,
      problem: 'invalid manifest: name: must not be empty; capabilities: must list at least one operation',
    });
  });

  it('refuses an API version the host does not support, saying what it supports', () => {
    expect(validateManifest({ ...good, apiVersion: 7 }, [1])).toEqual({
      ok: false,
      problem: 'SDK API version 7 is not supported by this agent (supports 1)',
    });
    expect(validateManifest({ ...good, apiVersion: 3, apiVersions: [2] }, [1])).toEqual({
      ok: false,
      problem: 'SDK API versions 2, 3 are not supported by this agent (supports 1)',
    });
  });

  it('negotiates the highest shared API version', () => {
    expect(validateManifest({ ...good, apiVersion: 2, apiVersions: [1] }, [1])).toMatchObject({
      ok: true,
      apiVersion: 1,
    });
    expect(validateManifest({ ...good, apiVersion: 1, apiVersions: [2, 3] }, [1, 2])).toMatchObject({
      ok: true,
      apiVersion: 2,
    });
  });

  it('accepts every operation, drops unknown fields and repeated capabilities', () => {
    const check = validateManifest(
      { ...good, capabilities: [...OPERATIONS, 'backup'], description: 'd', homepage: 'https://x' },
      [1],
    );
    expect(check).toEqual({
      ok: true,
      apiVersion: 1,
      manifest: { ...good, capabilities: [...OPERATIONS], description: 'd' },
    });
  });
});
