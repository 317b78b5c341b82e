import { MAX_REPOSITORY_IDENTITY } from '@cairn/proto/vocabulary';

/**
 * The repository identity a `repository.identity` task event reports: its `data` (JSON) is
 * `{identity}` with a non-empty string of at most MAX_REPOSITORY_IDENTITY characters; anything
 * else reports none. Pure.
 *
 * @example reportedIdentity('{"identity":"f7fd678c"}') // → 'f7fd678c'
 * @example reportedIdentity('{"identity":""}') // → undefined
 */
export function reportedIdentity(data: string | null): string | undefined {
  if (data === null || data === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  const identity = (parsed as { identity?: unknown } | null)?.identity;
  return typeof identity === 'string' && identity !== '' && identity.length <= MAX_REPOSITORY_IDENTITY
    ? identity
    : undefined;
}
