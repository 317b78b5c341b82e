/**
 * @cairn/plugin-sdk: the contract between a Cairn agent and a provider plugin.
 *
 * A plugin package's default export (or named export `plugin`) is a {@link ProviderPlugin}:
 *
 * @example
 * import { definePlugin, PluginError, SDK_API_VERSION } from '@cairn/plugin-sdk';
 * export default definePlugin({
 *   manifest: { name: 'acme', version: '1.0.0', apiVersion: SDK_API_VERSION,
 *               capabilities: ['backup', 'restore'], configSchema: { type: 'object' } },
 *   createProvider: (connection) => ({
 *     async backup(req, ctx) {
 *       ctx.progress({ percent: 50, message: 'halfway' });
 *       if (ctx.signal.aborted) throw ctx.signal.reason;
 *       return { externalId: 'snap-1', sizeBytes: 1024, mode: 'FULL' };
 *     },
 *   }),
 * });
 */
export * from './manifest.js';
export * from './manifest-check.js';
export * from './provider.js';
export * from './errors.js';
export * from './version.js';
export * from './identity.js';
