// A plugin whose backup reports 50 % and then 20 %; the conformance kit must fail it.
let n = 0;
export default {
  manifest: {
    name: 'cairn-plugin-backwards',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider: () => ({
    async backup(req, ctx) {
      ctx.progress({ percent: 50 });
      ctx.progress({ percent: 20 });
      return { externalId: `backwards-${++n}-${Date.now()}`, sizeBytes: 1, mode: req.mode };
    },
  }),
};
