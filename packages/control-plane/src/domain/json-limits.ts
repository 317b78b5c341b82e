/*
 * Limits on the free-form JSON a client may store (an instance's locator, a provider
 * connection's config and credentials). The store keeps these in TEXT columns (65,535 bytes on
 * MySQL) and every agent receives them inside a frame of bounded size, so the bounds sit well
 * below both; depth is bounded because every reader of the value (JSON.parse, JSON.stringify,
 * protobuf encoding, plugins) recurses on it.
 */

/** Most containers (objects, arrays) nested inside one another; `{}` is 1 deep. */
export const JSON_MAX_DEPTH = 32;
/** Most bytes of the value serialised as JSON, in UTF-8. */
export const JSON_MAX_BYTES = 16 * 1024;

/**
 * Keys that JavaScript objects treat specially: `__proto__` is silently dropped when such an
 * object is copied, and all three are the usual vector for prototype pollution in the plugins
 * that read these values. Refused, never dropped.
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export interface JsonLimits {
  maxDepth: number;
  maxBytes: number;
}

export interface JsonProblem {
  /** Where inside the value, e.g. `['vm', 0, '__proto__']`; empty for the value itself. */
  path: (string | number)[];
  message: string;
}

/** The UTF-8 length of a well-formed string, without allocating its encoding. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** True when `s` holds no unpaired UTF-16 surrogate (which cannot be stored as UTF-8). */
export function isWellFormed(s: string): boolean {
  return !/\p{Cs}/u.test(s);
}

/**
 * The first way `value` (as parsed from JSON) breaks the limits, or undefined when it keeps them.
 * Walks without recursion, so an absurdly deep value is judged without growing the stack.
 */
export function jsonProblem(
  value: unknown,
  limits: JsonLimits = { maxDepth: JSON_MAX_DEPTH, maxBytes: JSON_MAX_BYTES },
): JsonProblem | undefined {
  const stack: { value: unknown; depth: number; path: (string | number)[] }[] = [{ value, depth: 0, path: [] }];
  while (stack.length > 0) {
    const { value: v, depth, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (!isWellFormed(v)) return { path, message: 'holds an unpaired UTF-16 surrogate (not valid Unicode)' };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    // Named at the value itself: the path down to the offending level may be thousands long.
    if (depth + 1 > limits.maxDepth)
      return { path: [], message: `is nested deeper than ${limits.maxDepth} levels (the limit)` };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth: depth + 1, path: [...path, i] });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!;
      if (FORBIDDEN_KEYS.has(k)) {
        return { path: [...path, k], message: `the key "${k}" is not allowed (${[...FORBIDDEN_KEYS].join(', ')})` };
      }
      if (!isWellFormed(k)) return { path, message: 'has a key with an unpaired UTF-16 surrogate' };
      stack.push({ value: (v as Record<string, unknown>)[k], depth: depth + 1, path: [...path, k] });
    }
  }
  const bytes = utf8Length(JSON.stringify(value) ?? '');
  if (bytes > limits.maxBytes) {
    return { path: [], message: `is ${bytes} bytes as JSON (UTF-8); the limit is ${limits.maxBytes} bytes` };
  }
  return undefined;
}
