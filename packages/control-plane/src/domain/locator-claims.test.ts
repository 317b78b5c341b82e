import { describe, expect, it } from 'vitest';
import {
  effectivePolicy,
  judgeTenantLocator,
  judgeTenantNamespace,
  judgeTenantTarget,
  normalizeRoot,
} from './locator-claims.js';

describe('normalizeRoot', () => {
  it.each([
    ['/srv/tenants/acme', { ok: true, root: '/srv/tenants/acme' }],
    ['/srv//tenants/acme/', { ok: true, root: '/srv/tenants/acme' }],
    ['srv/acme', { ok: false, message: 'must be an absolute path on the agent host' }],
    ['/srv/../etc', { ok: false, message: 'must not contain . or .. segments' }],
    ['/srv/./acme', { ok: false, message: 'must not contain . or .. segments' }],
    ['/', { ok: false, message: 'must not grant the whole file system' }],
    ['///', { ok: false, message: 'must not grant the whole file system' }],
    ['/srv/a\0b', { ok: false, message: 'must be an absolute path on the agent host' }],
  ])('%j', (raw, expected) => expect(normalizeRoot(raw)).toEqual(expected));
});

describe('judgeTenantLocator', () => {
  const roots = ['/srv/t/acme', '/data/acme'];
  it.each([
    ['any policy takes anything', 'any', { vm: 'x' }, { ok: true }],
    ['sp-only refuses', 'sp-only', { paths: ['/srv/t/acme'] }, { ok: false, path: 'locator' }],
    ['a root itself', 'granted-roots', { paths: ['/srv/t/acme'] }, { ok: true }],
    ['below two roots', 'granted-roots', { paths: ['/srv/t/acme/www/', '/data/acme/db'] }, { ok: true }],
    [
      'a sibling with the root as prefix',
      'granted-roots',
      { paths: ['/srv/t/acmeX'] },
      { ok: false, path: 'locator.paths[0]' },
    ],
    ['.. anywhere', 'granted-roots', { paths: ['/srv/t/acme/../acme/x'] }, { ok: false, path: 'locator.paths[0]' }],
    [
      'the second path outside',
      'granted-roots',
      { paths: ['/srv/t/acme', '/etc'] },
      { ok: false, path: 'locator.paths[1]' },
    ],
    ['not a path list', 'granted-roots', { vm: 'x' }, { ok: false, path: 'locator' }],
    ['an empty path list', 'granted-roots', { paths: [] }, { ok: false, path: 'locator' }],
    ['null', 'granted-roots', null, { ok: false, path: 'locator' }],
    ['a number as a path', 'granted-roots', { paths: [7] }, { ok: false, path: 'locator.paths[0]' }],
  ] as const)('%s', (_, policy, locator, expected) => {
    expect(judgeTenantLocator(policy, roots, locator, 'locator')).toMatchObject(expected);
  });

  it('says when nothing is granted to the tenant', () => {
    expect(judgeTenantLocator('granted-roots', [], { paths: ['/srv'] }, 'locator')).toMatchObject({
      message: 'no host path is granted to this tenant on the provider connection',
    });
  });
});

describe('effectivePolicy', () => {
  it.each([
    ['any', true, 'sp-only'],
    ['any', false, 'any'],
    ['granted-roots', true, 'granted-roots'],
    ['sp-only', true, 'sp-only'],
  ] as const)('%s with sp-locators %s is judged as %s', (policy, spLocators, judged) => {
    expect(effectivePolicy(policy, spLocators)).toBe(judged);
  });
});

describe('judgeTenantNamespace', () => {
  it.each([
    ['any', true],
    ['sp-only', false],
    // Roots are host paths: no namespace is ever granted by them.
    ['granted-roots', false],
  ] as const)('%s', (policy, ok) => {
    expect(judgeTenantNamespace(policy)).toEqual(
      ok
        ? { ok: true }
        : {
            ok: false,
            path: 'targetNamespace',
            message: 'only a service-provider admin may restore into another namespace on this provider connection',
          },
    );
  });
});

describe('judgeTenantTarget', () => {
  it.each([
    ['any', '/anywhere', true],
    ['sp-only', '/srv/t/acme/out', false],
    ['granted-roots', '/srv/t/acme/out', true],
    ['granted-roots', '/srv/t/other', false],
    ['granted-roots', 'relative', false],
  ] as const)('%s %s', (policy, target, ok) => {
    expect(judgeTenantTarget(policy, ['/srv/t/acme'], target).ok).toBe(ok);
  });
});
