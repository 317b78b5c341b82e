/** Reconnect delays: exponential from `initialMs`, capped at `maxMs`. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 5_000 };

/**
 * Delay before reconnect number `failures` (0 for the first retry), with full jitter: uniform
 * between 0 and the exponential cap, so a fleet of agents that lost the same control plane does
 * not come back in lockstep.
 *
 * @example backoffDelay(3, { initialMs: 200, maxMs: 5000 }, () => 0.5) // → 800
 */
export function backoffDelay(
  failures: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exp = Math.min(Math.max(0, failures), 30);
  const cap = Math.min(policy.maxMs, policy.initialMs * 2 ** exp);
  return Math.floor(random() * cap);
}
