import { portalSigningKey, signPortalToken, verifyPortalToken } from '../../src/domain/portalToken';

const key = portalSigningKey('admin-token-for-tests-1234');

test('when a portal token is signed, then it verifies for its account until it expires', () => {
  const now = Date.now();
  const token = signPortalToken(key, 'acc_1', now + 60_000);
  expect(token).toMatch(/^rrp_[\w-]+\.[\w-]+$/);
  expect(verifyPortalToken(key, token, now)).toEqual({ ok: true, accountId: 'acc_1', expiresAtMs: Math.floor((now + 60_000) / 1000) * 1000 });
  expect(verifyPortalToken(key, token, now + 61_000)).toEqual({ ok: false, reason: 'expired' });
});

test('when a token is tampered with or signed by another key, then it is refused', () => {
  const token = signPortalToken(key, 'acc_1', Date.now() + 60_000);
  const [payload, sig] = token.slice(4).split('.');
  const forged = Buffer.from(JSON.stringify({ a: 'acc_2', e: 9_999_999_999 })).toString('base64url');
  expect(verifyPortalToken(key, `rrp_${forged}.${sig}`).ok).toBe(false);
  expect(verifyPortalToken(key, `rrp_${payload}.${sig.slice(0, -2)}xx`).ok).toBe(false);
  expect(verifyPortalToken(portalSigningKey('another-admin-token-5678'), token).ok).toBe(false);
  expect(verifyPortalToken(key, 'rrp_garbage').ok).toBe(false);
  expect(verifyPortalToken(key, token + '.x').ok).toBe(false);
  // Every one-character change of the signature is refused, padding bits included.
  for (const c of 'AQgw') if (!sig.endsWith(c)) expect(verifyPortalToken(key, `rrp_${payload}.${sig.slice(0, -1)}${c}`).ok).toBe(false);
});
