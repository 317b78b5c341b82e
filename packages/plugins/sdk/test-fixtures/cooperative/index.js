// A well-behaved plugin: with `hold` in its config a backup runs until its signal is aborted, then
// reports that it wound down and rejects with an AbortError of its own; with `failCode` it fails
// with a PluginError of that code (shaped by hand: a fixture cannot import the SDK).
export default {
  manifest: {
    name: 'cairn-plugin-cooperative',
    version: '0.0.1',
    apiVersion: 1,
    capabilities: ['backup'],
    configSchema: { type: 'object' },
  },
  createProvider(connection) {
    const { failCode, failMessage, hold } = connection.config;
    return {
      async backup(req, ctx) {
        if (failCode) {
          throw Object.assign(new Error(failMessage), { name: 'PluginError', code: failCode, retryable: false });
        }
        if (hold) {
          await new Promise((_resolve, reject) => {
            const stop = () => {
              ctx.event({ type: 'provider.message', message: 'cooperative backup aborted, cleaned up' });
              reject(Object.assign(new Error('the backup was aborted'), { name: 'AbortError' }));
            };
            if (ctx.signal.aborted) stop();
            else ctx.signal.addEventListener('abort', stop, { once: true });
          });
        }
        return { externalId: 'coop-1', sizeBytes: 1, mode: req.mode };
      },
    };
  },
};
