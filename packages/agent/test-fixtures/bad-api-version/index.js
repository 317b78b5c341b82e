// Written for an SDK API version no agent supports yet.
export default {
  manifest: {
    name: 'cairn-plugin-bad-api',
    version: '0.0.1',
    apiVersion: 7,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    throw new Error('must never be called: the agent refuses this plugin');
  },
};
