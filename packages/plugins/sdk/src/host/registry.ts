import type { wire } from '@cairn/proto';
import type { LoadedPlugin } from './loader.js';

/**
 * The plugins this agent hosts, by the name tasks use (the manifest name, which is the npm
 * package name; the spec the operator typed is accepted too).
 */
export class PluginRegistry {
  private readonly byName = new Map<string, LoadedPlugin>();

  constructor(private readonly plugins: readonly LoadedPlugin[]) {
    for (const p of plugins) this.byName.set(p.manifest.name, p);
    for (const p of plugins) if (!this.byName.has(p.spec)) this.byName.set(p.spec, p);
  }

  get(name: string): LoadedPlugin | undefined {
    return this.byName.get(name);
  }

  list(): readonly LoadedPlugin[] {
    return this.plugins;
  }

  /** What the hello reports: every plugin with its negotiated API version and capabilities. */
  infos(): wire.IPluginInfo[] {
    return this.plugins.map((p) => ({
      name: p.manifest.name,
      version: p.manifest.version,
      apiVersion: p.apiVersion,
      capabilities: [...p.manifest.capabilities],
    }));
  }
}
