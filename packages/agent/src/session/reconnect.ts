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

/** The longest `Retry-After` the agent honours: a broken server cannot park it for hours. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * A `Retry-After` header (seconds, or an HTTP date) in milliseconds from `now`, capped at
 * {@link MAX_RETRY_AFTER_MS}; undefined when absent or unreadable.
 *
 * @example parseRetryAfter('2', 0) // → 2000
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

/**
 * The delay before the next connect: the jittered backoff, but never sooner than the control
 * plane asked (`retryAfterMs`, from a 429 that refused the last attempt). A small jitter on top
 * keeps agents refused together from coming back together.
 *
 * @example reconnectDelay(0, 2000, DEFAULT_BACKOFF, () => 0) // → 2000
 */
export function reconnectDelay(
  failures: number,
  retryAfterMs: number | undefined,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const backoff = backoffDelay(failures, policy, random);
  if (retryAfterMs === undefined) return backoff;
  return Math.max(backoff, retryAfterMs + Math.floor(random() * Math.min(1000, retryAfterMs / 4)));
}

/** How a connection to one control plane URL ended, as far as the choice of the next URL goes. */
export type ConnectEnd =
  /** The agent ends a good session to send a fresh hello: the same control plane. */
  | 'rehello'
  /** Refused with 429: that control plane is up and asked the agent to wait. */
  | 'paced'
  /** No session was had (refused, unreachable, no welcome), or a welcomed one was lost. */
  | 'failed';

/**
 * Which of `count` control plane URLs (replicas of one control plane) the next connect goes to:
 * the next one in the list after a failure or a lost session, so an agent whose replica died is
 * at another within one reconnect; the same one when that one is up and only asked for a pause
 * or a new hello. Pure.
 *
 * @example nextServer(2, 3, 'failed') // → 0
 */
export function nextServer(current: number, count: number, end: ConnectEnd): number {
  if (count <= 1 || end !== 'failed') return current;
  return (current + 1) % count;
}
