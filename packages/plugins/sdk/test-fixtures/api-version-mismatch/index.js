// Its package.json says API version 1 (which the agent hosts), its manifest says 2: an author
// who moved to a newer SDK and forgot package.json. The agent must refuse it, naming both.
export default {
  manifest: {
    name: 'cairn-plugin-api-mismatch',
    version: '0.0.1',
    apiVersion: 2,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    throw new Error('must never be called: the agent refuses this plugin');
  },
};
