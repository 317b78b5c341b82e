import { OPERATION_METHODS, type Provider, type ProviderPlugin } from '@cairn/plugin-sdk';

/**
 * The same plugin with some provider methods replaced: `change` gets the plugin's provider (its
 * methods bound, so a class instance works too) and returns the methods to use instead. The
 * kit uses it to watch how an operation settles; tests use it to break a plugin on purpose.
 *
 * @example withProvider(plugin, (p) => ({ backup: async (req, ctx) => ({ ...(await p.backup!(req, ctx)), sizeBytes: -1 }) }))
 */
export function withProvider(
  plugin: ProviderPlugin,
  change: (provider: Provider) => Partial<Provider>,
): ProviderPlugin {
  return {
    manifest: plugin.manifest,
    createProvider(connection) {
      const original = plugin.createProvider(connection);
      const bound: Record<string, unknown> = {};
      for (const method of Object.values(OPERATION_METHODS)) {
        const fn = (original as Record<string, unknown>)[method];
        if (typeof fn === 'function') bound[method] = (fn as (...args: unknown[]) => unknown).bind(original);
      }
      return { ...(bound as Provider), ...change(bound as Provider) };
    },
  };
}
