import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Endpoint signing secrets at rest: AES-256-GCM under a key ring. The stored form is a
 * versioned envelope in the same text column,
 *
 *   enc:v1:<keyId>:<base64url(iv | ciphertext | tag)>
 *
 * with a random 12-byte IV and the endpoint id as additional authenticated data, so a
 * ciphertext copied into another endpoint's row does not decrypt. The key id is a short hash
 * of the key, so the ring is just the list of keys (newest first): the newest encrypts, every
 * key decrypts. A value without the `enc:` prefix is a plaintext secret from before
 * encryption (read as is; `npm run secrets:reencrypt` encrypts it).
 */
export const ENVELOPE_PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretDecryptionError extends Error {}

export interface KeyRing {
  /** Newest first; at least one. */
  readonly keys: readonly { id: string; key: Buffer }[];
}

/** The id of a key: the first 8 hex digits of SHA-256 over a label and the key. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update('rr-webhooks secret key id\0').update(key).digest('hex').slice(0, 8);
}

/** A ring from raw 32-byte keys, newest first. */
export function keyRing(keys: readonly Buffer[]): KeyRing {
  if (keys.length === 0) throw new Error('a key ring needs at least one key');
  for (const k of keys) if (k.length !== 32) throw new Error('every key must be 32 bytes (AES-256)');
  return { keys: keys.map((key) => ({ id: keyId(key), key })) };
}

/** Parses `SECRET_ENCRYPTION_KEYS`: comma-separated base64 (or base64url) keys of 32 bytes each; undefined when a key is malformed. */
export function parseKeyList(value: string): Buffer[] | undefined {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) return undefined;
  const keys: Buffer[] = [];
  for (const p of parts) {
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(p)) return undefined;
    const key = Buffer.from(p, 'base64');
    if (key.length !== 32) return undefined;
    keys.push(key);
  }
  return keys;
}

/** A new random key, base64 (for DATA_DIR/secret-key and `SECRET_ENCRYPTION_KEYS`). */
export function newKeyBase64(): string {
  return randomBytes(32).toString('base64');
}

export function isEncrypted(stored: string): boolean {
  return stored.startsWith('enc:');
}

/** The envelope of `plaintext` under the ring's newest key, bound to `endpointId`. */
export function seal(ring: KeyRing, endpointId: string, plaintext: string): string {
  const { id, key } = ring.keys[0];
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(endpointId, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${ENVELOPE_PREFIX}${id}:${Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64url')}`;
}

/**
 * The plaintext of a stored value: an envelope is decrypted (any key of the ring), anything
 * else is a legacy plaintext secret. Errors name the endpoint and key id, never the value.
 */
export function open(ring: KeyRing | null, endpointId: string, stored: string): string {
  if (!isEncrypted(stored)) return stored;
  const fail = (why: string) => new SecretDecryptionError(`signing secret of endpoint ${endpointId} cannot be decrypted: ${why}`);
  if (!stored.startsWith(ENVELOPE_PREFIX)) throw fail('unknown envelope version');
  const rest = stored.slice(ENVELOPE_PREFIX.length);
  const colon = rest.indexOf(':');
  if (colon < 0) throw fail('malformed envelope');
  const id = rest.slice(0, colon);
  const entry = ring?.keys.find((k) => k.id === id);
  if (!entry) throw fail(`key ${id} is not in SECRET_ENCRYPTION_KEYS`);
  const blob = Buffer.from(rest.slice(colon + 1), 'base64url');
  if (blob.length < IV_BYTES + TAG_BYTES) throw fail('malformed envelope');
  try {
    const decipher = createDecipheriv('aes-256-gcm', entry.key, blob.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(endpointId, 'utf8'));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    return Buffer.concat([decipher.update(blob.subarray(IV_BYTES, blob.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw fail(`authentication failed under key ${id} (tampered, or moved from another endpoint)`);
  }
}

/** True when `stored` is already an envelope under the ring's newest key. */
export function isCurrent(ring: KeyRing, stored: string): boolean {
  return stored.startsWith(`${ENVELOPE_PREFIX}${ring.keys[0].id}:`);
}
