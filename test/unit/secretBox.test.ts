import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { isCurrent, keyId, keyRing, open, parseKeyList, seal, SecretDecryptionError } from '../../src/domain/secretBox';
import { openSecret, sealSecret, useSecretKeyRing } from '../../src/db/endpointSecrets';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const flip = (envelope: string, at: number) => {
  const [pre, blob] = [envelope.slice(0, envelope.lastIndexOf(':') + 1), envelope.slice(envelope.lastIndexOf(':') + 1)];
  const bytes = Buffer.from(blob, 'base64url');
  bytes[at < 0 ? bytes.length + at : at] ^= 1;
  return pre + bytes.toString('base64url');
};

test('when a secret is sealed, then the envelope names the newest key, hides the secret, and differs every time', () => {
  const ring = keyRing([k1, k2]);
  const a = seal(ring, 'ep_1', SECRET);
  const b = seal(ring, 'ep_1', SECRET);
  expect(a).toMatch(new RegExp(`^enc:v1:${keyId(k1)}:[A-Za-z0-9_-]+$`));
  expect(a).not.toContain('whsec_');
  expect(a).not.toContain(SECRET.slice(6, 20));
  expect(a).not.toBe(b); // random IV
  expect(isCurrent(ring, a)).toBe(true);
  expect(isCurrent(keyRing([k2, k1]), a)).toBe(false);
});

type Case = [what: string, sealWith: Buffer[], sealFor: string, openWith: Buffer[] | null, openFor: string, mutate: (e: string) => string, ok: boolean, error?: RegExp];
test.each<Case>([
  ['round trip', [k1], 'ep_1', [k1], 'ep_1', (e) => e, true],
  ['an old key still decrypts', [k1], 'ep_1', [k2, k1], 'ep_1', (e) => e, true],
  ['a key left out of the ring does not', [k1], 'ep_1', [k2], 'ep_1', (e) => e, false, /key [0-9a-f]{8} is not in SECRET_ENCRYPTION_KEYS/],
  ['no ring at all (SECRET_ENCRYPTION=off) does not', [k1], 'ep_1', null, 'ep_1', (e) => e, false, /not in SECRET_ENCRYPTION_KEYS/],
  ['a wrong key under the same id does not', [k1], 'ep_1', [k2], 'ep_1', (e) => e.replace(keyId(k1), keyId(k2)), false, /authentication failed/],
  ['a flipped ciphertext bit does not', [k1], 'ep_1', [k1], 'ep_1', (e) => flip(e, 14), false, /authentication failed/],
  ['a flipped tag bit does not', [k1], 'ep_1', [k1], 'ep_1', (e) => flip(e, -1), false, /authentication failed/],
  ['a flipped IV bit does not', [k1], 'ep_1', [k1], 'ep_1', (e) => flip(e, 0), false, /authentication failed/],
  ['a truncated envelope does not', [k1], 'ep_1', [k1], 'ep_1', (e) => e.slice(0, 30), false, /malformed|authentication failed/],
  ['moved to another endpoint, it does not', [k1], 'ep_1', [k1], 'ep_2', (e) => e, false, /endpoint ep_2 .*moved from another endpoint/],
  ['an unknown envelope version does not', [k1], 'ep_1', [k1], 'ep_1', (e) => e.replace('enc:v1:', 'enc:v9:'), false, /unknown envelope version/],
])('%s', (...row) => {
  const [, sealWith, sealFor, openWith, openFor, mutate, ok, error] = row as unknown as Case; // rest: jest would take an 8th parameter for done()
  const stored = mutate(seal(keyRing(sealWith), sealFor, SECRET));
  const run = () => open(openWith && keyRing(openWith), openFor, stored);
  if (ok) expect(run()).toBe(SECRET);
  else {
    expect(run).toThrow(SecretDecryptionError);
    expect(run).toThrow(error!);
    try {
      run();
    } catch (err) {
      expect((err as Error).message).not.toContain(SECRET);
    }
  }
});

test('when a stored value has no enc: prefix, then it is a plaintext secret from before encryption and reads as is', () => {
  expect(open(keyRing([k1]), 'ep_1', SECRET)).toBe(SECRET);
  expect(open(null, 'ep_1', SECRET)).toBe(SECRET);
});

test('when SECRET_ENCRYPTION_KEYS is parsed, then it takes base64 32-byte keys newest first, and a bad one is an error naming the variable', () => {
  const value = `${k2.toString('base64')}, ${k1.toString('base64url')}`;
  expect(parseKeyList(value)).toEqual([k2, k1]);
  expect(loadConfig({ SECRET_ENCRYPTION_KEYS: value }).SECRET_ENCRYPTION_KEYS).toEqual([k2, k1]);
  expect(loadConfig({}).SECRET_ENCRYPTION_KEYS).toBeUndefined();
  for (const bad of ['short', randomBytes(16).toString('base64'), `${k1.toString('base64')},nope!`, ' , ']) {
    expect(() => loadConfig({ SECRET_ENCRYPTION_KEYS: bad })).toThrow(/SECRET_ENCRYPTION_KEYS=.*SECRET_ENCRYPTION_KEYS must be comma-separated base64 keys of 32 bytes/);
  }
  expect(() => loadConfig({ SECRET_ENCRYPTION: 'maybe' })).toThrow(/SECRET_ENCRYPTION=/);
  // A key that is almost right is still key material: the error does not echo it.
  const almost = randomBytes(31).toString('base64');
  expect(() => loadConfig({ SECRET_ENCRYPTION_KEYS: almost })).toThrow(/SECRET_ENCRYPTION_KEYS=\(value not shown\)/);
  expect(() => loadConfig({ SECRET_ENCRYPTION_KEYS: almost })).not.toThrow(almost);
  expect(() => loadConfig({ ADMIN_TOKEN: 'short-token' })).toThrow(/ADMIN_TOKEN=\(value not shown\): must be at least 16/);
  expect(() => loadConfig({ ADMIN_TOKEN: 'short-token' })).not.toThrow('short-token');
});

test('when secrets are opened through the process key ring again and again, then each envelope opens to its own secret, a moved envelope still fails, and a new ring forgets what was opened', () => {
  useSecretKeyRing(keyRing([k1]));
  const a = sealSecret('ep_a', SECRET);
  const rotated = sealSecret('ep_a', 'whsec_rotatedrotatedrotatedrotated00');
  for (let i = 0; i < 3; i++) {
    expect(openSecret('ep_a', a)).toBe(SECRET);
    expect(openSecret('ep_a', rotated)).toBe('whsec_rotatedrotatedrotatedrotated00');
    expect(() => openSecret('ep_b', a)).toThrow(SecretDecryptionError); // bound to its endpoint, cached or not
  }
  useSecretKeyRing(keyRing([k2])); // the old key dropped from the ring: nothing opens from memory
  expect(() => openSecret('ep_a', a)).toThrow(SecretDecryptionError);
});
