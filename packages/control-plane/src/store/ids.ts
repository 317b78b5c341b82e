import { createHash, randomBytes, randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(value: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[value % 32] + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/** The last id's time and random part: ids made in one millisecond count up from it. */
let last = { time: -1, rand: '' };

/** The random part plus one (base 32, carried); undefined when it is all 'z'. */
function increment(rand: string): string | undefined {
  const digits = [...rand];
  for (let i = digits.length - 1; i >= 0; i--) {
    const d = ALPHABET.indexOf(digits[i]!);
    if (d < 31) {
      digits[i] = ALPHABET[d + 1]!;
      return digits.join('');
    }
    digits[i] = ALPHABET[0]!;
  }
  return undefined;
}

/** Random bytes drawn 4 KiB at a time (256 ids), not 16 per call. */
const pool = Buffer.alloc(4096);
let pooled = 0;

function randomPart(): string {
  if (pooled < 16) {
    randomFillSync(pool);
    pooled = pool.length;
  }
  let rand = '';
  for (let i = pooled - 16; i < pooled; i++) rand += ALPHABET[pool[i]! & 31];
  pooled -= 16;
  return rand;
}

/**
 * A time-ordered id with a type prefix, e.g. `tsk_01jdq8x2m4k7h9t3c5v8b1n6w2`: 10 characters of
 * milliseconds (`now`, the creation time) then 16 random ones (80 bits), so sorting by id sorts
 * by creation time and list cursors can simply be the last id. Within this process ids sort in
 * the order they were made even when the clock does not move on (several in one millisecond, a
 * test's clock held still, or set back): such an id keeps the previous one's time and counts its
 * random part up by one.
 */
export function newId(prefix: string, now: number): string {
  if (now > last.time) {
    last = { time: now, rand: randomPart() };
  } else {
    const next = increment(last.rand);
    // Every random part after the last one used up (never in practice): the next millisecond.
    last = next === undefined ? { time: last.time + 1, rand: randomPart() } : { time: last.time, rand: next };
  }
  return `${prefix}_${base32(last.time, 10)}${last.rand}`;
}

/** A secret to hand out once: 32 random bytes, base64url, with a readable prefix. */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** Secrets are stored only as SHA-256. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * The lowest id `newId(prefix, …)` makes at `time`: every id made before `time` sorts below it, so
 * a range of ids below it is a range of creation times.
 */
export function firstIdAt(prefix: string, time: number): string {
  return `${prefix}_${base32(Math.max(0, Math.floor(time)), 10)}`;
}
