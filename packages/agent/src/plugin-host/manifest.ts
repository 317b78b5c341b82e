import { validateManifest, type ManifestCheck } from '@cairn/plugin-sdk';

export type { ManifestCheck } from '@cairn/plugin-sdk';

/** The plugin SDK API versions this agent can host. */
export const SUPPORTED_API_VERSIONS: readonly number[] = [1];

/**
 * Validates a plugin's manifest and negotiates the SDK API version with this agent's
 * ({@link validateManifest}, shared with `@cairn/plugin-sdk/testing`). Pure; the returned
 * `problem` is one line meant for an operator.
 *
 * @example checkManifest({ name: 'x', version: '1.0.0', apiVersion: 7, capabilities: ['backup'], configSchema: {} })
 * // → { ok: false, problem: 'SDK API version 7 is not supported by this agent (supports 1)' }
 */
export function checkManifest(raw: unknown, hostSupports: readonly number[] = SUPPORTED_API_VERSIONS): ManifestCheck {
  return validateManifest(raw, hostSupports);
}
