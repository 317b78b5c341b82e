// Never settles and never looks at ctx.signal: only the agent's guard can end this task.
export default {
  manifest: {
    name: 'cairn-plugin-hangs',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    return {
      backup(_req, ctx) {
        ctx.progress({ percent: 1, message: 'started, and that is all' });
        return new Promise(() => {});
      },
    };
  },
};
