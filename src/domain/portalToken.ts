import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived, signed portal tokens: `rrp_<payload>.<signature>`, payload = account id and
 * expiry. Stateless (nothing to store or clean up); anyone holding one acts as that account
 * until it expires, exactly like Svix's app-portal links.
 */
export const PORTAL_TOKEN_PREFIX = 'rrp_';

export function portalSigningKey(adminToken: string): Buffer {
  // Derived, so rotating ADMIN_TOKEN also invalidates every outstanding portal link.
  return createHmac('sha256', adminToken).update('rr-webhooks portal links v1').digest();
}

export function signPortalToken(key: Buffer, accountId: string, expiresAtMs: number): string {
  const payload = Buffer.from(JSON.stringify({ a: accountId, e: Math.floor(expiresAtMs / 1000) })).toString('base64url');
  const sig = createHmac('sha256', key).update(payload).digest('base64url');
  return `${PORTAL_TOKEN_PREFIX}${payload}.${sig}`;
}

export type PortalVerdict = { ok: true; accountId: string; expiresAtMs: number } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' };

export function verifyPortalToken(key: Buffer, token: string, nowMs = Date.now()): PortalVerdict {
  if (!token.startsWith(PORTAL_TOKEN_PREFIX)) return { ok: false, reason: 'malformed' };
  const [payload, sig, extra] = token.slice(PORTAL_TOKEN_PREFIX.length).split('.');
  if (!payload || !sig || extra !== undefined) return { ok: false, reason: 'malformed' };
  // Compare the canonical text, so a signature with altered padding bits does not pass as the same.
  const expected = Buffer.from(createHmac('sha256', key).update(payload).digest('base64url'));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  let parsed: { a?: unknown; e?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof parsed.a !== 'string' || typeof parsed.e !== 'number') return { ok: false, reason: 'malformed' };
  if (parsed.e * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, accountId: parsed.a, expiresAtMs: parsed.e * 1000 };
}
