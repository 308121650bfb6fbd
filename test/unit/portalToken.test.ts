import { createHmac } from 'node:crypto';
import { keyId, PortalKeyRing, portalSigningKey, signPortalToken, verifyPortalToken } from '../../src/domain/portalToken';

const key = portalSigningKey('admin-token-for-tests-1234');

test('when a portal token is signed, then it verifies for its account until it expires', () => {
  const now = Date.now();
  const { token } = signPortalToken(key, 'acc_1', now + 60_000, { nowMs: now });
  expect(token).toMatch(/^rrp_[\w-]+\.[\w-]+$/);
  expect(verifyPortalToken(key, token, now)).toEqual({
    ok: true,
    accountId: 'acc_1',
    expiresAtMs: Math.floor((now + 60_000) / 1000) * 1000,
    issuedAtMs: now,
    linkId: expect.stringMatching(/^pl_/),
    scope: 'manage',
  });
  expect(verifyPortalToken(key, token, now + 61_000)).toEqual({ ok: false, reason: 'expired' });
});

test('when a token is tampered with or signed by another key, then it is refused', () => {
  const { token } = signPortalToken(key, 'acc_1', Date.now() + 60_000);
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

test("when keys rotate, then links signed by any key of the ring verify, the newest signs, and a dropped key's links are refused", () => {
  const oldKey = Buffer.from('o'.repeat(32));
  const newKey = Buffer.from('n'.repeat(32));
  const { token: oldLink } = signPortalToken(new PortalKeyRing([oldKey]), 'acc_1', Date.now() + 60_000);
  const ring = new PortalKeyRing([newKey, oldKey]);
  expect(verifyPortalToken(ring, oldLink)).toMatchObject({ ok: true, accountId: 'acc_1' });
  const { token: newLink } = signPortalToken(ring, 'acc_1', Date.now() + 60_000, { scope: 'read' });
  const claims = JSON.parse(Buffer.from(newLink.slice(4).split('.')[0], 'base64url').toString());
  expect(claims).toEqual({ a: 'acc_1', e: expect.any(Number), i: expect.any(Number), k: keyId(newKey), j: expect.stringMatching(/^pl_/), s: 'read' });
  expect(verifyPortalToken(ring, newLink)).toMatchObject({ ok: true, scope: 'read' });
  expect(verifyPortalToken(new PortalKeyRing([newKey]), oldLink)).toEqual({ ok: false, reason: 'bad_signature' });
});

test('when a token from before key ids (no k, i, j) is verified, then the first key of the ring still accepts it', () => {
  const payload = Buffer.from(JSON.stringify({ a: 'acc_1', e: Math.floor(Date.now() / 1000) + 60 })).toString('base64url');
  const sig = createHmac('sha256', key).update(payload).digest('base64url');
  expect(verifyPortalToken(new PortalKeyRing([key]), `rrp_${payload}.${sig}`)).toMatchObject({ ok: true, accountId: 'acc_1', scope: 'manage', issuedAtMs: 0 });
});
