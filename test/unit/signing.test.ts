import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { newSigningSecret, rrSignature, signatureHeaders, standardSignature } from '../../src/domain/signing';

const body = JSON.stringify({ eventType: 'referrer_added', data: { participantId: 384, email: 'ada@example.com' }, createdAt: 1739070028207, updatedAt: 1739070028207 });

test('when a secret is generated, then it looks like a Standard Webhooks secret with 24 random bytes', () => {
  const s = newSigningSecret();
  expect(s).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
  expect(Buffer.from(s.slice(6), 'base64')).toHaveLength(24);
  expect(newSigningSecret()).not.toBe(s);
});

test('when X-RR-Signature is computed, then it is the hex HMAC-SHA256 of the body keyed with the secret string as shown', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex');
  expect(rrSignature(secret, body)).toBe(expected);
  expect(rrSignature(secret, body)).toMatch(/^[0-9a-f]{64}$/);
  expect(rrSignature(secret, body + ' ')).not.toBe(expected);
});

test('when webhook-signature is computed, then the standardwebhooks library verifies it and rejects tampering', () => {
  const secret = newSigningSecret();
  const ts = Math.floor(Date.now() / 1000);
  const headers = signatureHeaders([secret], 'dlv_01', ts, body);
  expect(headers['webhook-signature']).toBe(standardSignature(secret, 'dlv_01', ts, body));
  const wh = new Webhook(secret);
  expect(wh.verify(body, headers)).toEqual(JSON.parse(body));
  expect(() => wh.verify(body.replace('384', '385'), headers)).toThrow();
  expect(() => wh.verify(body, { ...headers, 'webhook-id': 'dlv_02' })).toThrow();
  expect(() => new Webhook(newSigningSecret()).verify(body, headers)).toThrow();
});

test('when two secrets are active, then webhook-signature carries both and receivers holding either verify; X-RR uses the newest', () => {
  const [newer, older] = [newSigningSecret(), newSigningSecret()];
  const ts = Math.floor(Date.now() / 1000);
  const headers = signatureHeaders([newer, older], 'dlv_9', ts, body);
  expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
  expect(new Webhook(newer).verify(body, headers)).toBeTruthy();
  expect(new Webhook(older).verify(body, headers)).toBeTruthy();
  expect(headers['x-rr-signature']).toBe(rrSignature(newer, body));
});
