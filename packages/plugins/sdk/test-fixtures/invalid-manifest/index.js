// Unknown capability, fractional API version, no config schema.
export const plugin = {
  manifest: {
    name: 'cairn-plugin-invalid-manifest',
    version: '0.0.1',
    apiVersion: 1.5,
    capabilities: ['backup', 'teleport'],
  },
  createProvider() {
    throw new Error('must never be called: the agent refuses this plugin');
  },
};
