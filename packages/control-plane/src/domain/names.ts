import { isWellFormed } from './json-limits.js';

/*
 * Names (of tenants, tokens, agents, provider connections, offerings, instances) are compared
 * byte for byte after NFC normalisation, on every backend: what looks the same and is the same
 * character sequence is one name; case and accents make different names.
 */

/** Most characters (Unicode code points, as MySQL counts varchar(200)) in a name. */
export const NAME_MAX_CHARS = 200;

/** Characters that show nothing on their own: spaces, format and default-ignorable characters, marks, fillers. */
const INVISIBLE = /^[\p{White_Space}\p{Default_Ignorable_Code_Point}\p{Cf}\p{M}\u2800]*$/u;
const CONTROL = /\p{Cc}/u;

/** Number of Unicode code points in a well-formed string. */
export function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) i++;
    n++;
  }
  return n;
}

/** The stored form of a name: surrounding white space removed, then NFC. */
export function normaliseName(raw: string): string {
  return raw.trim().normalize('NFC');
}

/** Why a normalised name is refused, or undefined when it is fine. */
export function nameProblem(name: string, maxChars = NAME_MAX_CHARS): string | undefined {
  if (!isWellFormed(name)) return 'holds an unpaired UTF-16 surrogate (not valid Unicode)';
  if (name.length === 0) return 'must not be empty';
  if (CONTROL.test(name)) return 'must not contain control characters';
  if (INVISIBLE.test(name)) return 'must contain a visible character (not only spaces, zero-width or invisible ones)';
  const n = codePoints(name);
  if (n > maxChars) return `is ${n} characters; the limit is ${maxChars}`;
  return undefined;
}

/** Why a free text (description, endpoint, external id…) is refused, or undefined. */
export function textProblem(text: string, maxChars: number): string | undefined {
  if (!isWellFormed(text)) return 'holds an unpaired UTF-16 surrogate (not valid Unicode)';
  const n = codePoints(text);
  if (n > maxChars) return `is ${n} characters; the limit is ${maxChars}`;
  return undefined;
}

/** Every id Cairn hands out: a three-letter kind, `_`, and 26 base-36 characters (store/ids.ts `newId`). */
export const ID_PATTERN = /^[a-z]{3}_[0-9a-z]{26}$/;

/** Whether a string given for an id can be one: one that cannot is unknown (404) without a look-up. */
export function isId(s: string): boolean {
  return ID_PATTERN.test(s);
}
