// The operation throws before returning a promise.
export default {
  manifest: {
    name: 'cairn-plugin-throws-sync',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    return {
      backup() {
        throw new Error('boom: thrown synchronously');
      },
    };
  },
};
