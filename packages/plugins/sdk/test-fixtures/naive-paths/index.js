import { readFileSync } from 'node:fs';

// Declares host-paths but trusts its locator: whatever stops it from reading outside the roots
// is the agent's own check, which runs before this code.
export default {
  manifest: {
    name: 'cairn-plugin-naive-paths',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup', 'host-paths'],
    configSchema: { type: 'object' },
  },
  createProvider() {
    return {
      async backup(req, ctx) {
        const bytes = req.locator.paths.map((p) => readFileSync(p).length).reduce((a, b) => a + b, 0);
        return { externalId: `read-${bytes}-roots-${ctx.host.roots.length}`, sizeBytes: bytes, mode: 'FULL' };
      },
    };
  },
};
