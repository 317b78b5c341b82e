import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPlugin, loadPlugins, PluginLoadError, type PluginFallback } from './loader.js';
import { PluginRegistry } from './registry.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../test-fixtures/${name}`, import.meta.url));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cairn-host-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Installs fixture plugins under `dir/node_modules`, as npm would. */
function install(names: Record<string, string>): void {
  mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  for (const [pkg, fixtureName] of Object.entries(names))
    symlinkSync(fixture(fixtureName), path.join(dir, 'node_modules', pkg), 'dir');
}

describe('plugin loader', () => {
  /** Resolves the counter fixture by name, as a host resolves the plugins it ships with. */
  const shipped: PluginFallback = {
    from: 'the test host',
    resolve: (spec) => {
      if (spec === 'cairn-plugin-counter') return pathToFileURL(path.join(fixture('counter'), 'index.js')).href;
      throw Object.assign(new Error(`Cannot find package '${spec}'`), { code: 'ERR_MODULE_NOT_FOUND' });
    },
  };

  it("loads a plugin through the host's fallback when the working directory has none, and negotiates API version 1", async () => {
    const counter = await loadPlugin('cairn-plugin-counter', { cwd: dir, fallback: shipped });
    expect(counter.apiVersion).toBe(1);
    expect(counter.manifest.name).toBe('cairn-plugin-counter');
    expect(new PluginRegistry([counter]).infos()).toEqual([
      { name: 'cairn-plugin-counter', version: '0.0.1', apiVersion: 1, capabilities: ['backup'] },
    ]);
    await expect(loadPlugin('cairn-plugin-counter', { cwd: dir })).rejects.toThrow(
      `plugin cairn-plugin-counter: cannot be found (looked from ${dir})`,
    );
  });

  it('resolves a plugin package relative to the working directory first', async () => {
    install({ 'cairn-plugin-rejects': 'rejects' });
    const p = await loadPlugin('cairn-plugin-rejects', { cwd: dir });
    expect(p.manifest.name).toBe('cairn-plugin-rejects');
  });

  it('loads a plugin by absolute path, from a named export `plugin`', async () => {
    // invalid-manifest uses a named export; its refusal proves the export was found.
    await expect(loadPlugin(fixture('invalid-manifest'))).rejects.toThrow(
      /^plugin .*invalid-manifest: invalid manifest: /,
    );
  });

  it('refuses a plugin written for an unsupported SDK API version from its package.json, without importing it', async () => {
    // The fixture's module throws when imported: "failed to load" would mean its code ran.
    install({ 'cairn-plugin-bad-api': 'bad-api-version' });
    await expect(loadPlugin('cairn-plugin-bad-api', { cwd: dir })).rejects.toThrow(
      'plugin cairn-plugin-bad-api: SDK API version 7 is not supported by this agent (supports 1)',
    );
  });

  it('refuses a plugin whose package.json and manifest declare other API versions, naming both', async () => {
    install({ 'cairn-plugin-api-mismatch': 'api-version-mismatch' });
    await expect(loadPlugin('cairn-plugin-api-mismatch', { cwd: dir })).rejects.toThrow(
      'plugin cairn-plugin-api-mismatch: declares SDK API version 1 in package.json ("cairn".apiVersions) but version 2 in its manifest (apiVersion, apiVersions); they must be the same',
    );
  });

  it('refuses a plugin package without a valid "cairn" field', async () => {
    const pkg = path.join(dir, 'node_modules', 'cairn-plugin-bare');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(path.join(pkg, 'index.js'), "throw new Error('must never be imported');\n");
    const write = (json: object) => writeFileSync(path.join(pkg, 'package.json'), JSON.stringify(json));
    write({ name: 'cairn-plugin-bare', type: 'module', main: 'index.js' });
    await expect(loadPlugin('cairn-plugin-bare', { cwd: dir })).rejects.toThrow(
      'plugin cairn-plugin-bare: package.json has no "cairn" field (add "cairn": {"kind": "provider", "id": "<id>", "apiVersions": [1]})',
    );
    write({ name: 'cairn-plugin-bare', main: 'index.js', cairn: { kind: 'exporter', id: '', apiVersions: [] } });
    await expect(loadPlugin('cairn-plugin-bare', { cwd: dir })).rejects.toThrow(
      'plugin cairn-plugin-bare: invalid "cairn" field in package.json: kind: must be "provider", got "exporter"; id: must be a non-empty string; apiVersions: must be a non-empty array of positive integers',
    );
  });

  it('names every problem of an invalid manifest', async () => {
    const err = await loadPlugin(fixture('invalid-manifest')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginLoadError);
    const message = (err as Error).message;
    expect(message).toMatch(/apiVersion/);
    expect(message).toMatch(/capabilities\.1/);
    expect(message).toMatch(/configSchema/);
  });

  it('says so when a plugin cannot be found, naming where it looked', async () => {
    await expect(loadPlugin('cairn-plugin-nowhere', { cwd: dir, fallback: shipped })).rejects.toThrow(
      `plugin cairn-plugin-nowhere: cannot be found (looked from ${dir} and from the test host)`,
    );
  });

  it('reports every unusable plugin at once, and duplicates', async () => {
    install({ 'cairn-plugin-bad-api': 'bad-api-version' });
    const counter = fixture('counter');
    const { plugins, errors } = await loadPlugins([counter, 'cairn-plugin-bad-api', 'cairn-plugin-nowhere', counter], {
      cwd: dir,
    });
    expect(plugins.map((p) => p.manifest.name)).toEqual(['cairn-plugin-counter']);
    expect(errors.map((e) => e.spec)).toEqual(['cairn-plugin-bad-api', 'cairn-plugin-nowhere', counter]);
  });
});
