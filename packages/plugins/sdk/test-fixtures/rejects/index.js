// Rejects with an ordinary Error, as a buggy plugin would.
export default {
  manifest: {
    name: 'cairn-plugin-rejects',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    return {
      async backup() {
        await Promise.resolve();
        throw new TypeError("Cannot read properties of undefined (reading 'snapshotId')");
      },
    };
  },
};
