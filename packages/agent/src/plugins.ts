import type { PluginFallback } from '@cairn/plugin-sdk/host';

/**
 * Where the agent looks for a plugin its working directory does not have: among its own packages,
 * so the plugins it ships with (the dummy provider, restic) load wherever it runs. Resolved here,
 * since a module's `import.meta.resolve` resolves from that module's package only.
 *
 * @example const { plugins, errors } = await loadPlugins(['@cairn/plugin-dummy'], { fallback: AGENT_PACKAGES });
 */
export const AGENT_PACKAGES: PluginFallback = {
  from: "the agent's own packages",
  resolve: (spec) => import.meta.resolve(spec),
};
