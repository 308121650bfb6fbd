import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lowercase

/**
 * Time-sortable ids (`dlv_01jd…`): 10 chars of milliseconds then 16 random chars, so
 * "newest first" is ORDER BY id DESC and the id itself serves as a page cursor.
 */
export function newId(prefix: 'acc' | 'key' | 'ep' | 'evt' | 'dlv', now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(16);
  let tail = '';
  for (const b of rnd) tail += ALPHABET[b % 32];
  return `${prefix}_${time}${tail}`;
}

export const ID_PATTERN = /^[a-z]+_[0-9a-z]{26}$/;
