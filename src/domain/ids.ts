import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lowercase

/**
 * Time-sortable ids (`dlv_01jd…`): 10 chars of milliseconds then 16 random chars, so
 * "newest first" is ORDER BY id DESC and the id itself serves as a page cursor.
 */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  const rnd = randomBytes(16);
  let tail = '';
  for (const b of rnd) tail += ALPHABET[b % 32];
  return idTimePrefix(prefix, now) + tail;
}

export type IdPrefix = 'acc' | 'key' | 'ep' | 'evt' | 'dlv';

/** `dlv_` + 10 time characters; SQL appends 16 random hex characters (a subset of the alphabet) for ids made in bulk. */
export function idTimePrefix(prefix: IdPrefix, now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return `${prefix}_${time}`;
}

export const ID_PATTERN = /^[a-z]+_[0-9a-z]{26}$/;
