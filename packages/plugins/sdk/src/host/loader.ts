import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PluginManifest } from '../manifest.js';
import type { ProviderPlugin } from '../provider.js';
import { apiVersionMismatch, checkManifest, checkPackageField, SUPPORTED_API_VERSIONS } from './manifest.js';

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
 * A second place to look for plugins: the program that hosts them resolving a spec as its own
 * package would (the agent passes its `import.meta.resolve`, so the plugins it ships with load
 * whatever the working directory). A module's `import.meta.resolve` resolves from that module
 * only, which is why the host cannot do this for its embedder.
 */
export interface PluginFallback {
  /** Names the place in errors: `the agent's own packages`. */
  from: string;
  /** A file: URL for `spec`; throws ERR_MODULE_NOT_FOUND when there is none. */
  resolve(spec: string): string;
}

export interface LoadOptions {
  /** Where plugins are installed: a spec is resolved from here first. Default `process.cwd()`. */
  cwd?: string;
  fallback?: PluginFallback;
}

/**
 * Finds the file a plugin spec names: first as the operator's working directory would see it
 * (plugins are installed next to where the agent runs), then through the host's `fallback`
 * (plugins it ships with, such as the dummy provider).
 */
function resolvePlugin(spec: string, cwd: string, fallback: PluginFallback | undefined): string {
  try {
    return createRequire(path.join(cwd, 'x.js')).resolve(spec);
  } catch {
    // Not installed below cwd (or ESM-only exports): try the fallback below.
  }
  let file: string;
  try {
    file = path.isAbsolute(spec) ? spec : fallback ? fileURLToPath(fallback.resolve(spec)) : '';
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND') throw new PluginLoadError(spec, `failed to load: ${errorText(err)}`);
    file = '';
  }
  if (file === '' || !statSync(file, { throwIfNoEntry: false })?.isFile())
    throw new PluginLoadError(
      spec,
      `cannot be found (looked from ${cwd}${fallback ? ` and from ${fallback.from}` : ''})`,
    );
  return file;
}

/** The package.json that governs `file` (the nearest one above it, as Node finds `"type"`). */
function readPackageJson(spec: string, file: string): Record<string, unknown> {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'package.json');
    let text: string;
    try {
      text = readFileSync(candidate, 'utf8');
    } catch {
      if (path.dirname(dir) === dir) throw new PluginLoadError(spec, `has no package.json (looked above ${file})`);
      continue;
    }
    try {
      const pkg: unknown = JSON.parse(text);
      if (typeof pkg === 'object' && pkg !== null && !Array.isArray(pkg)) return pkg as Record<string, unknown>;
    } catch {
      // Reported below, as for a package.json that is not an object.
    }
    throw new PluginLoadError(spec, `${candidate} is not a JSON object`);
  }
}

/**
 * Checks that a module's exports hold a usable plugin (default export, or a named `plugin`),
 * validates its manifest and negotiates the API version. Touches only plain properties of
 * the exports; plugin functions are not called here. `declared` holds the API versions of the
 * package.json's `"cairn"` field, which the manifest must repeat exactly.
 */
export function inspectPlugin(
  spec: string,
  exports: unknown,
  declared?: { packageApiVersions: readonly number[] },
): LoadedPlugin {
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
  const mismatch = declared && apiVersionMismatch(declared.packageApiVersions, candidate['manifest']);
  if (mismatch) throw new PluginLoadError(spec, mismatch);
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
 * Loads one plugin by npm package name or absolute path. Its package.json's `"cairn"` field is
 * checked before the module is imported, so a plugin the agent cannot host runs no code.
 *
 * @example const acme = await loadPlugin('cairn-plugin-acme', { cwd: '/opt/cairn' });
 * @throws PluginLoadError when it cannot be found, fails to load, or is not hostable.
 */
export async function loadPlugin(spec: string, options: LoadOptions = {}): Promise<LoadedPlugin> {
  const file = resolvePlugin(spec, options.cwd ?? process.cwd(), options.fallback);
  const field = checkPackageField(readPackageJson(spec, file)['cairn']);
  if (!field.ok) throw new PluginLoadError(spec, field.problem);
  const url = pathToFileURL(file).href;
  let exports: unknown;
  try {
    exports = await import(url);
  } catch (err) {
    throw new PluginLoadError(spec, `failed to load: ${errorText(err)}`);
  }
  return { ...inspectPlugin(spec, exports, { packageApiVersions: field.apiVersions }), url };
}

/**
 * Loads every plugin and reports every one that cannot be hosted (not only the first), so an
 * operator fixes them in one go. Two plugins with the same manifest name are an error too.
 */
export async function loadPlugins(
  specs: readonly string[],
  options: LoadOptions = {},
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
