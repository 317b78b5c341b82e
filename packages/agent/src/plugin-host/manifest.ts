import { negotiateApiVersion, OPERATIONS, type PluginManifest } from '@cairn/plugin-sdk';
import { z } from 'zod';

/** The plugin SDK API versions this agent can host. */
export const SUPPORTED_API_VERSIONS: readonly number[] = [1];

const manifestSchema = z.object({
  name: z.string().min(1, 'must not be empty'),
  version: z.string().min(1, 'must not be empty'),
  apiVersion: z.int().positive(),
  apiVersions: z.array(z.int().positive()).optional(),
  capabilities: z.array(z.enum(OPERATIONS)).min(1, 'must list at least one operation'),
  configSchema: z.record(z.string(), z.unknown()),
  description: z.string().optional(),
});

export type ManifestCheck = { ok: true; manifest: PluginManifest; apiVersion: number } | { ok: false; problem: string };

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(manifest)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Validates a plugin's manifest and negotiates the SDK API version: the highest version both
 * the agent and the plugin support (the plugin supports `apiVersion` plus any `apiVersions`).
 * Pure; the returned `problem` is one line meant for an operator.
 *
 * @example checkManifest({ name: 'x', version: '1.0.0', apiVersion: 7, capabilities: ['backup'], configSchema: {} })
 * // → { ok: false, problem: 'SDK API version 7 is not supported by this agent (supports 1)' }
 */
export function checkManifest(raw: unknown, hostSupports: readonly number[] = SUPPORTED_API_VERSIONS): ManifestCheck {
  if (typeof raw !== 'object' || raw === null) return { ok: false, problem: 'has no manifest object' };
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, problem: `invalid manifest: ${describeIssues(parsed.error)}` };
  const manifest = parsed.data;
  const pluginSupports = [...new Set([manifest.apiVersion, ...(manifest.apiVersions ?? [])])].sort((a, b) => a - b);
  const apiVersion = negotiateApiVersion(hostSupports, pluginSupports);
  if (apiVersion === undefined) {
    const versions = pluginSupports.join(', ');
    return {
      ok: false,
      problem: `SDK API version${pluginSupports.length > 1 ? 's' : ''} ${versions} ${pluginSupports.length > 1 ? 'are' : 'is'} not supported by this agent (supports ${hostSupports.join(', ')})`,
    };
  }
  return { ok: true, manifest: { ...manifest, capabilities: [...new Set(manifest.capabilities)] }, apiVersion };
}
