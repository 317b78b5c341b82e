// Calls process.exit() in the middle of a backup.
export default {
  manifest: {
    name: 'cairn-plugin-exits',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    return {
      async backup(_req, ctx) {
        ctx.progress({ percent: 10, message: 'about to exit' });
        await new Promise((resolve) => setTimeout(resolve, 20));
        process.exit(3);
      },
    };
  },
};
