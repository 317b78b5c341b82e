import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(value: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[value % 32] + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/**
 * A time-ordered id with a type prefix, e.g. `tsk_01jdq8x2m4k7h9t3c5v8b1n6w2`: 10 characters of
 * milliseconds (`now`, the creation time) then 16 random ones (80 bits), so sorting by id sorts
 * by creation time and list cursors can simply be the last id.
 */
export function newId(prefix: string, now: number): string {
  const bytes = randomBytes(16);
  let rand = '';
  for (const b of bytes) rand += ALPHABET[b & 31];
  return `${prefix}_${base32(now, 10)}${rand}`;
}

/** A secret to hand out once: 32 random bytes, base64url, with a readable prefix. */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** Secrets are stored only as SHA-256. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
