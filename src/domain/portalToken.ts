import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived, signed portal tokens: `rrp_<payload>.<signature>`. The payload names the account,
 * the expiry (`e`), the issue time (`i`), the signing key (`k`, so keys can rotate), the link's
 * own id (`j`, so one link can be revoked) and its scope (`s`: `read` links cannot change
 * anything). Anyone holding one acts as that account until it expires or is revoked, like
 * Svix's app-portal links. Tokens from before `k`/`i`/`j` existed still verify with the first key.
 */
export const PORTAL_TOKEN_PREFIX = 'rrp_';

export type PortalScope = 'manage' | 'read';

/** Signing keys, newest first: the newest signs, every one verifies. */
export class PortalKeyRing {
  private readonly byId: Map<string, Buffer>;
  constructor(readonly keys: Buffer[]) {
    if (keys.length === 0) throw new Error('a portal key ring needs at least one key');
    this.byId = new Map(keys.map((k) => [keyId(k), k]));
  }
  get newest(): { id: string; key: Buffer } {
    return { id: keyId(this.keys[0]), key: this.keys[0] };
  }
  find(id: string | undefined): Buffer | undefined {
    return id === undefined ? this.keys[0] : this.byId.get(id);
  }
}

/** A key's public name: a short hash, so the ring is just the list of keys. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** The key used when no PORTAL_SIGNING_KEYS are set outside the embedded default: derived from the admin token. */
export function portalSigningKey(adminToken: string): Buffer {
  return createHmac('sha256', adminToken).update('rr-webhooks portal links v1').digest();
}

export interface PortalClaims {
  accountId: string;
  expiresAtMs: number;
  issuedAtMs: number;
  linkId: string;
  scope: PortalScope;
}

export function signPortalToken(
  ring: PortalKeyRing | Buffer,
  accountId: string,
  expiresAtMs: number,
  opts: { scope?: PortalScope; nowMs?: number; linkId?: string } = {},
): { token: string; linkId: string } {
  const { id, key } = ring instanceof PortalKeyRing ? ring.newest : { id: keyId(ring), key: ring };
  const linkId = opts.linkId ?? `pl_${randomBytes(12).toString('base64url')}`;
  const claims = { a: accountId, e: Math.floor(expiresAtMs / 1000), i: opts.nowMs ?? Date.now(), k: id, j: linkId, ...(opts.scope === 'read' ? { s: 'read' } : {}) };
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = createHmac('sha256', key).update(payload).digest('base64url');
  return { token: `${PORTAL_TOKEN_PREFIX}${payload}.${sig}`, linkId };
}

export type PortalVerdict = ({ ok: true } & PortalClaims) | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' };

export function verifyPortalToken(ring: PortalKeyRing | Buffer, token: string, nowMs = Date.now()): PortalVerdict {
  const keys = ring instanceof PortalKeyRing ? ring : new PortalKeyRing([ring]);
  if (!token.startsWith(PORTAL_TOKEN_PREFIX)) return { ok: false, reason: 'malformed' };
  const [payload, sig, extra] = token.slice(PORTAL_TOKEN_PREFIX.length).split('.');
  if (!payload || !sig || extra !== undefined) return { ok: false, reason: 'malformed' };
  let parsed: { a?: unknown; e?: unknown; i?: unknown; k?: unknown; j?: unknown; s?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const key = keys.find(typeof parsed?.k === 'string' ? parsed.k : undefined);
  if (!key) return { ok: false, reason: 'bad_signature' }; // a retired key
  // Compare the canonical text, so a signature with altered padding bits does not pass as the same.
  const expected = Buffer.from(createHmac('sha256', key).update(payload).digest('base64url'));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  if (typeof parsed.a !== 'string' || typeof parsed.e !== 'number') return { ok: false, reason: 'malformed' };
  if (parsed.e * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return {
    ok: true,
    accountId: parsed.a,
    expiresAtMs: parsed.e * 1000,
    issuedAtMs: typeof parsed.i === 'number' ? parsed.i : 0, // milliseconds: a revoke-all must not catch a link issued right after it
    linkId: typeof parsed.j === 'string' ? parsed.j : '',
    scope: parsed.s === 'read' ? 'read' : 'manage',
  };
}
