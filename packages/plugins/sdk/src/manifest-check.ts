import { OPERATIONS, TRAITS, type Capability, type PluginManifest } from './manifest.js';
import { negotiateApiVersion } from './version.js';

export type ManifestCheck = { ok: true; manifest: PluginManifest; apiVersion: number } | { ok: false; problem: string };

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validates a plugin's manifest, as the agent does before running any plugin code, and
 * negotiates the SDK API version: the highest version both the host and the plugin support
 * (the plugin supports `apiVersion` plus any `apiVersions`). Unknown fields are dropped and
 * capabilities deduplicated. Pure; the returned `problem` is one line meant for an operator.
 *
 * @example validateManifest({ name: 'x', version: '1.0.0', apiVersion: 7, capabilities: ['backup'], configSchema: {} }, [1])
 * // → { ok: false, problem: 'SDK API version 7 is not supported by this agent (supports 1)' }
 */
export function validateManifest(raw: unknown, hostSupports: readonly number[]): ManifestCheck {
  if (!isObject(raw)) return { ok: false, problem: 'has no manifest object' };
  const problems: string[] = [];
  const bad = (path: string, message: string) => problems.push(`${path}: ${message}`);
  for (const key of ['name', 'version'] as const) {
    const v = raw[key];
    if (typeof v !== 'string') bad(key, 'must be a string');
    else if (v === '') bad(key, 'must not be empty');
  }
  if (!isPositiveInt(raw['apiVersion'])) bad('apiVersion', 'must be a positive integer');
  const apiVersions = raw['apiVersions'];
  if (apiVersions !== undefined) {
    if (!Array.isArray(apiVersions)) bad('apiVersions', 'must be an array of positive integers');
    else apiVersions.forEach((v, i) => isPositiveInt(v) || bad(`apiVersions.${i}`, 'must be a positive integer'));
  }
  const capabilities = raw['capabilities'];
  if (!Array.isArray(capabilities)) bad('capabilities', 'must be an array of operations');
  else {
    const known: readonly unknown[] = [...OPERATIONS, ...TRAITS];
    capabilities.forEach(
      (v, i) => known.includes(v) || bad(`capabilities.${i}`, `${JSON.stringify(v)} is not one of ${known.join(', ')}`),
    );
    if (!capabilities.some((v) => (OPERATIONS as readonly unknown[]).includes(v)))
      bad('capabilities', 'must list at least one operation');
  }
  if (!isObject(raw['configSchema'])) bad('configSchema', 'must be an object (a JSON Schema)');
  if (raw['description'] !== undefined && typeof raw['description'] !== 'string')
    bad('description', 'must be a string');
  if (problems.length > 0) return { ok: false, problem: `invalid manifest: ${problems.join('; ')}` };

  const declared = [raw['apiVersion'] as number, ...((apiVersions as number[] | undefined) ?? [])];
  const pluginSupports = [...new Set(declared)].sort((a, b) => a - b);
  const apiVersion = negotiateApiVersion(hostSupports, pluginSupports);
  if (apiVersion === undefined) {
    const many = pluginSupports.length > 1;
    return {
      ok: false,
      problem: `SDK API version${many ? 's' : ''} ${pluginSupports.join(', ')} ${many ? 'are' : 'is'} not supported by this agent (supports ${hostSupports.join(', ')})`,
    };
  }
  const manifest: PluginManifest = {
    name: raw['name'] as string,
    version: raw['version'] as string,
    apiVersion: raw['apiVersion'] as number,
    ...(apiVersions === undefined ? {} : { apiVersions: apiVersions as number[] }),
    capabilities: [...new Set(capabilities as Capability[])],
    configSchema: raw['configSchema'] as Record<string, unknown>,
    ...(raw['description'] === undefined ? {} : { description: raw['description'] as string }),
  };
  return { ok: true, manifest, apiVersion };
}
