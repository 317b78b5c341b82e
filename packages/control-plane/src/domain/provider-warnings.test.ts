import { describe, expect, it } from 'vitest';
import { providerWarnings } from './provider-warnings.js';

describe('providerWarnings', () => {
  it('warns of a zone without agents, and of a plugin none of its agents runs', () => {
    expect(providerWarnings('z', 'p', { agents: 0, plugins: [] }).map((w) => w.code)).toEqual(['no_agent_in_zone']);
    expect(providerWarnings('z', 'p', { agents: 2, plugins: ['q'] }).map((w) => w.code)).toEqual([
      'plugin_not_in_zone',
    ]);
    expect(providerWarnings('z', 'p', { agents: 1, plugins: ['q', 'p'] })).toEqual([]);
  });
});
