// Module state shows which worker ran a job: a reused worker keeps counting, a new one starts at 1.
let calls = 0;
export default {
  manifest: {
    name: 'cairn-plugin-counter',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider(connection) {
    return {
      async backup(req) {
        calls += 1;
        if (connection.config.exit) process.exit(1);
        return { externalId: `call-${calls}`, sizeBytes: 1, mode: req.mode };
      },
    };
  },
};
