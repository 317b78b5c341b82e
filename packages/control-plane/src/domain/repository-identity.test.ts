import { describe, expect, it } from 'vitest';
import { reportedIdentity } from './repository-identity.js';

describe('reportedIdentity', () => {
  it('reads the identity of a repository.identity event', () => {
    expect(reportedIdentity(JSON.stringify({ identity: 'f7fd678c20d2b45b' }))).toBe('f7fd678c20d2b45b');
    expect(reportedIdentity(JSON.stringify({ identity: 'x'.repeat(255) }))).toBe('x'.repeat(255));
  });

  it.each([
    ['no data', null],
    ['empty data', ''],
    ['data that is not JSON', '{identity'],
    ['JSON null', 'null'],
    ['no identity', '{}'],
    ['an empty identity', '{"identity":""}'],
    ['an identity that is not text', '{"identity":42}'],
    ['an identity over 255 characters', JSON.stringify({ identity: 'x'.repeat(256) })],
  ])('reports none for %s', (_what, data) => {
    expect(reportedIdentity(data)).toBeUndefined();
  });
});
