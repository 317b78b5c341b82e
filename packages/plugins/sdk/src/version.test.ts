import { describe, expect, it } from 'vitest';
import { negotiateApiVersion, SDK_API_VERSION } from './version.js';

describe('negotiateApiVersion', () => {
  it('picks the highest version both sides support', () => {
    expect(negotiateApiVersion([1, 2, 3], [2, 3, 4])).toBe(3);
    expect(negotiateApiVersion([1], [1, 2])).toBe(1);
    expect(negotiateApiVersion([3, 1, 2], [2, 1])).toBe(2);
  });

  it('gives undefined when they share none', () => {
    expect(negotiateApiVersion([1], [2, 3])).toBeUndefined();
    expect(negotiateApiVersion([], [1])).toBeUndefined();
  });

  it('agrees with itself on the version this SDK describes', () => {
    expect(negotiateApiVersion([SDK_API_VERSION], [SDK_API_VERSION])).toBe(SDK_API_VERSION);
  });
});
