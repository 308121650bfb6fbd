import { createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

/** Secrets look like Standard Webhooks / Svix ones: `whsec_` + base64 of 24 random bytes. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/**
 * The platform's documented header: lowercase hex HMAC-SHA256 of the raw body, keyed with
 * the UTF-8 bytes of the secret string exactly as shown to the customer (prefix included).
 */
export function rrSignature(secret: string, body: string): string {
  return createHmac(
    'sha256',
    hmacKey(`rr\0${secret}`, () => Buffer.from(secret, 'utf8')),
  )
    .update(body, 'utf8')
    .digest('hex');
}

/**
 * HMAC keys as KeyObjects, made once per secret: handing createHmac a Buffer makes it check and
 * wrap the key on every call, which the service's CPU profiles showed at ~40 µs per attempt
 * (fan-out 20). Bounded; the secrets are in this process's memory while it signs anyway.
 */
const hmacKeys = new Map<string, KeyObject>();
const HMAC_KEYS_MAX = 2_000;

function hmacKey(id: string, bytes: () => Buffer): KeyObject {
  let key = hmacKeys.get(id);
  if (!key) {
    if (hmacKeys.size >= HMAC_KEYS_MAX) hmacKeys.delete(hmacKeys.keys().next().value!);
    hmacKeys.set(id, (key = createSecretKey(bytes())));
  }
  return key;
}

/**
 * Standard Webhooks `v1,<base64>`: the key is the base64-decoded part after `whsec_`, the
 * message `${webhookId}.${timestampSeconds}.${body}`.
 */
export function standardSignature(secret: string, webhookId: string, timestampSeconds: number, body: string): string {
  const key = hmacKey(`std\0${secret}`, () => Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64'));
  const mac = createHmac('sha256', key).update(`${webhookId}.${timestampSeconds}.${body}`, 'utf8').digest('base64');
  return `v1,${mac}`;
}

export interface SignatureHeaders {
  'x-rr-signature': string;
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * All signature headers of one attempt. `secrets` is newest first; during a rotation overlap
 * the previous secret signs too, so `webhook-signature` carries two space-separated entries.
 */
export function signatureHeaders(secrets: readonly string[], webhookId: string, timestampSeconds: number, body: string): SignatureHeaders {
  if (secrets.length === 0) throw new Error('at least one signing secret is required');
  return {
    'x-rr-signature': rrSignature(secrets[0], body),
    'webhook-id': webhookId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((s) => standardSignature(s, webhookId, timestampSeconds, body)).join(' '),
  };
}
