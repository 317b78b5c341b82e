import { describe, expect, it } from 'vitest';
import { apiVersionMismatch, checkManifest, checkPackageField } from './manifest.js';

const good = {
  name: 'cairn-plugin-x',
  version: '1.0.0',
  apiVersion: 1,
  capabilities: ['backup'],
  configSchema: { type: 'object' },
};

describe('checkManifest', () => {
  const invalid: { name: string; manifest: unknown; problem: RegExp }[] = [
    { name: 'no manifest at all', manifest: undefined, problem: /no manifest/ },
    { name: 'an empty name', manifest: { ...good, name: '' }, problem: /^invalid manifest: name: must not be empty/ },
    { name: 'no version', manifest: { ...good, version: undefined }, problem: /version/ },
    { name: 'a fractional API version', manifest: { ...good, apiVersion: 1.5 }, problem: /apiVersion/ },
    {
      name: 'an unknown capability',
      manifest: { ...good, capabilities: ['backup', 'teleport'] },
      problem: /capabilities\.1/,
    },
    {
      name: 'no capabilities',
      manifest: { ...good, capabilities: [] },
      problem: /capabilities: must list at least one operation/,
    },
    { name: 'no config schema', manifest: { ...good, configSchema: undefined }, problem: /configSchema/ },
    {
      name: 'a config schema that is not an object',
      manifest: { ...good, configSchema: 'object' },
      problem: /configSchema/,
    },
  ];
  it.each(invalid)('refuses a manifest with $name', ({ manifest, problem }) => {
    const check = checkManifest(manifest);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.problem).toMatch(problem);
  });

  it('refuses an SDK API version the agent does not support, saying what it supports', () => {
    expect(checkManifest({ ...good, apiVersion: 7 })).toEqual({
      ok: false,
      problem: 'SDK API version 7 is not supported by this agent (supports 1)',
    });
    expect(checkManifest({ ...good, apiVersion: 3, apiVersions: [2] })).toEqual({
      ok: false,
      problem: 'SDK API versions 2, 3 are not supported by this agent (supports 1)',
    });
  });

  it('negotiates the highest API version both sides support', () => {
    expect(checkManifest({ ...good, apiVersion: 2, apiVersions: [1] })).toMatchObject({ ok: true, apiVersion: 1 });
    expect(checkManifest({ ...good, apiVersion: 1, apiVersions: [2, 3] }, [1, 2])).toMatchObject({
      ok: true,
      apiVersion: 2,
    });
  });
});

describe('checkPackageField and apiVersionMismatch', () => {
  it('accepts a field whose API versions the agent shares, sorted and deduplicated', () => {
    expect(checkPackageField({ kind: 'provider', id: 'x', apiVersions: [2, 1, 2] }, [1])).toEqual({
      ok: true,
      apiVersions: [1, 2],
    });
  });

  it('refuses API versions the agent does not host, in the words the manifest check uses', () => {
    expect(checkPackageField({ kind: 'provider', id: 'x', apiVersions: [3, 2] }, [1])).toEqual({
      ok: false,
      problem: 'SDK API versions 2, 3 are not supported by this agent (supports 1)',
    });
  });

  it('sees a manifest declaring the same versions in another order as agreeing', () => {
    expect(apiVersionMismatch([1, 2], { ...good, apiVersion: 2, apiVersions: [1] })).toBeUndefined();
    expect(apiVersionMismatch([1, 2], { ...good, apiVersion: 2 })).toBe(
      'declares SDK API versions 1, 2 in package.json ("cairn".apiVersions) but version 2 in its manifest (apiVersion, apiVersions); they must be the same',
    );
  });
});
