// Throws from a timer: nothing awaits it, so it is an uncaught exception where it runs.
export default {
  manifest: {
    name: 'cairn-plugin-stray-throw',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    return {
      backup() {
        setTimeout(() => {
          throw new Error('stray timer blew up');
        }, 10);
        return new Promise(() => {});
      },
    };
  },
};
