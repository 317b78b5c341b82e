/** The plugin API version this SDK describes. Plugins declare the one they were written for. */
export const SDK_API_VERSION = 1;

/**
 * Picks the highest API version both sides support (as Nomad does with its plugins), or
 * `undefined` when they share none.
 *
 * @example negotiateApiVersion([1, 2], [1]) // → 1
 */
export function negotiateApiVersion(
  hostSupports: readonly number[],
  pluginSupports: readonly number[],
): number | undefined {
  const shared = hostSupports.filter((v) => pluginSupports.includes(v));
  return shared.length === 0 ? undefined : Math.max(...shared);
}
