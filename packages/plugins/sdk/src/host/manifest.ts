import { validateManifest, type ManifestCheck } from '../manifest-check.js';
import { negotiateApiVersion, SDK_API_VERSION } from '../version.js';

export type { ManifestCheck } from '../manifest-check.js';

/** The plugin SDK API versions this host can host: the one this SDK describes. */
export const SUPPORTED_API_VERSIONS: readonly number[] = [SDK_API_VERSION];

/**
 * Validates a plugin's manifest and negotiates the SDK API version with this agent's
 * ({@link validateManifest}, which `@cairn/plugin-sdk/testing` applies too). Pure; the returned
 * `problem` is one line meant for an operator.
 *
 * @example checkManifest({ name: 'x', version: '1.0.0', apiVersion: 7, capabilities: ['backup'], configSchema: {} })
 * // → { ok: false, problem: 'SDK API version 7 is not supported by this agent (supports 1)' }
 */
export function checkManifest(raw: unknown, hostSupports: readonly number[] = SUPPORTED_API_VERSIONS): ManifestCheck {
  return validateManifest(raw, hostSupports);
}

export type PackageFieldCheck = { ok: true; apiVersions: number[] } | { ok: false; problem: string };

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const sorted = (vs: readonly number[]): number[] => [...new Set(vs)].sort((a, b) => a - b);
const versionsText = (vs: readonly number[]): string => `${vs.length > 1 ? 'versions' : 'version'} ${vs.join(', ')}`;

/**
 * Checks the `"cairn"` field of a plugin's package.json: `{"kind": "provider", "id": "<id>",
 * "apiVersions": [1, …]}`. It is read before any plugin code runs, so a plugin written for an API
 * this agent cannot host is refused without being imported. Pure.
 *
 * @example checkPackageField({ kind: 'provider', id: 'acme', apiVersions: [7] })
 * // → { ok: false, problem: 'SDK API version 7 is not supported by this agent (supports 1)' }
 */
export function checkPackageField(
  raw: unknown,
  hostSupports: readonly number[] = SUPPORTED_API_VERSIONS,
): PackageFieldCheck {
  const example = '"cairn": {"kind": "provider", "id": "<id>", "apiVersions": [1]}';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, problem: `package.json has no "cairn" field (add ${example})` };
  const field = raw as Record<string, unknown>;
  const problems: string[] = [];
  if (field['kind'] !== 'provider') problems.push(`kind: must be "provider", got ${JSON.stringify(field['kind'])}`);
  if (typeof field['id'] !== 'string' || field['id'] === '') problems.push('id: must be a non-empty string');
  const versions = field['apiVersions'];
  if (!Array.isArray(versions) || versions.length === 0 || !versions.every(isPositiveInt))
    problems.push('apiVersions: must be a non-empty array of positive integers');
  if (problems.length > 0)
    return { ok: false, problem: `invalid "cairn" field in package.json: ${problems.join('; ')}` };
  const apiVersions = sorted(versions as number[]);
  if (negotiateApiVersion(hostSupports, apiVersions) === undefined) {
    const verb = apiVersions.length > 1 ? 'are' : 'is';
    return {
      ok: false,
      problem: `SDK API ${versionsText(apiVersions)} ${verb} not supported by this agent (supports ${hostSupports.join(', ')})`,
    };
  }
  return { ok: true, apiVersions };
}

/**
 * The package.json field and the manifest must declare the same API versions: the agent decides
 * by the first before loading the code and hosts the code by the second. Undefined when they agree
 * (or the manifest's versions are malformed, which {@link checkManifest} reports).
 *
 * @example apiVersionMismatch([1], { apiVersion: 2 })
 * // → 'declares SDK API version 1 in package.json ("cairn".apiVersions) but version 2 in its manifest; …'
 */
export function apiVersionMismatch(packageVersions: readonly number[], manifest: unknown): string | undefined {
  if (typeof manifest !== 'object' || manifest === null) return undefined;
  const m = manifest as Record<string, unknown>;
  const extra = m['apiVersions'] === undefined ? [] : m['apiVersions'];
  if (!isPositiveInt(m['apiVersion']) || !Array.isArray(extra) || !extra.every(isPositiveInt)) return undefined;
  const inManifest = sorted([m['apiVersion'], ...extra]);
  const inPackage = sorted(packageVersions);
  if (inManifest.join() === inPackage.join()) return undefined;
  return (
    `declares SDK API ${versionsText(inPackage)} in package.json ("cairn".apiVersions) but ` +
    `${versionsText(inManifest)} in its manifest (apiVersion, apiVersions); they must be the same`
  );
}
