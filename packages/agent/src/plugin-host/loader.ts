import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PluginManifest, ProviderPlugin } from '@cairn/plugin-sdk';
import { checkManifest, SUPPORTED_API_VERSIONS } from './manifest.js';

/** A plugin that passed validation and version negotiation. */
export interface LoadedPlugin {
  /** What the operator asked for (`--plugins`): a package name or a path. */
  spec: string;
  manifest: PluginManifest;
  /** The negotiated SDK API version. */
  apiVersion: number;
  plugin: ProviderPlugin;
  /** The module's file: URL, from which a worker thread loads the plugin again. */
  url?: string;
}

/** Why a plugin cannot be hosted; `message` is one line naming the plugin. */
export class PluginLoadError extends Error {
  override readonly name = 'PluginLoadError';
  constructor(
    readonly spec: string,
    readonly problem: string,
  ) {
    super(`plugin ${spec}: ${problem}`);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Finds the module a plugin spec names: first as the operator's working directory would see it
 * (plugins are installed next to where the agent runs), then as the agent's own package sees it
 * (plugins it ships with, such as the dummy provider).
 */
async function importPlugin(spec: string, cwd: string): Promise<{ exports: unknown; url: string }> {
  let resolved: string | undefined;
  try {
    resolved = createRequire(path.join(cwd, 'x.js')).resolve(spec);
  } catch {
    // Not installed below cwd (or ESM-only exports): try the agent's own resolution below.
  }
  if (resolved !== undefined) {
    const url = pathToFileURL(resolved).href;
    try {
      return { exports: await import(url), url };
    } catch (err) {
      throw new PluginLoadError(spec, `failed to load: ${errorText(err)}`);
    }
  }
  try {
    const url = path.isAbsolute(spec) ? pathToFileURL(spec).href : import.meta.resolve(spec);
    return { exports: await import(url), url };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_UNSUPPORTED_DIR_IMPORT') {
      throw new PluginLoadError(spec, `cannot be found (looked from ${cwd} and from the agent's own packages)`);
    }
    throw new PluginLoadError(spec, `failed to load: ${errorText(err)}`);
  }
}

/**
 * Checks that a module's exports hold a usable plugin (default export, or a named `plugin`),
 * validates its manifest and negotiates the API version. Touches only plain properties of
 * the exports; plugin functions are not called here.
 */
export function inspectPlugin(spec: string, exports: unknown): LoadedPlugin {
  const mod = (typeof exports === 'object' && exports !== null ? exports : {}) as Record<string, unknown>;
  const candidate = [mod['default'], mod['plugin']].find(
    (c): c is Record<string, unknown> => typeof c === 'object' && c !== null && 'manifest' in c,
  );
  if (!candidate)
    throw new PluginLoadError(
      spec,
      'does not export a plugin (a default export or a named export `plugin` with a manifest)',
    );
  if (typeof candidate['createProvider'] !== 'function')
    throw new PluginLoadError(spec, 'plugin has no createProvider function');
  const check = checkManifest(candidate['manifest'], SUPPORTED_API_VERSIONS);
  if (!check.ok) throw new PluginLoadError(spec, check.problem);
  return {
    spec,
    manifest: check.manifest,
    apiVersion: check.apiVersion,
    plugin: candidate as unknown as ProviderPlugin,
  };
}

/**
 * Loads one plugin by npm package name or absolute path.
 *
 * @example const dummy = await loadPlugin('@cairn/plugin-dummy');
 * @throws PluginLoadError when it cannot be found, fails to load, or is not hostable.
 */
export async function loadPlugin(spec: string, options: { cwd?: string } = {}): Promise<LoadedPlugin> {
  const { exports, url } = await importPlugin(spec, options.cwd ?? process.cwd());
  return { ...inspectPlugin(spec, exports), url };
}

/**
 * Loads every plugin and reports every one that cannot be hosted (not only the first), so an
 * operator fixes them in one go. Two plugins with the same manifest name are an error too.
 */
export async function loadPlugins(
  specs: readonly string[],
  options: { cwd?: string } = {},
): Promise<{ plugins: LoadedPlugin[]; errors: PluginLoadError[] }> {
  const plugins: LoadedPlugin[] = [];
  const errors: PluginLoadError[] = [];
  for (const spec of specs) {
    try {
      const loaded = await loadPlugin(spec, options);
      const twin = plugins.find((p) => p.manifest.name === loaded.manifest.name);
      if (twin) {
        errors.push(new PluginLoadError(spec, `has the same name (${loaded.manifest.name}) as plugin ${twin.spec}`));
        continue;
      }
      plugins.push(loaded);
    } catch (err) {
      errors.push(
        err instanceof PluginLoadError ? err : new PluginLoadError(spec, `failed to load: ${errorText(err)}`),
      );
    }
  }
  return { plugins, errors };
}
