import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configureSecretEncryption } from '../../src/bootstrap';
import { loadConfig } from '../../src/config';
import { sealSecret, secretKeyRing } from '../../src/db/endpointSecrets';
import { keyId, parseKeyList } from '../../src/domain/secretBox';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rr-secret-key-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('when the embedded default starts without SECRET_ENCRYPTION_KEYS, then it generates one key into DATA_DIR/secret-key (mode 0600) once and reuses it', () => {
  const cfg = loadConfig({ DATA_DIR: dir }, { embedded: true });
  expect(configureSecretEncryption(cfg)).toEqual({ source: 'generated', file: join(dir, 'secret-key') });
  const file = join(dir, 'secret-key');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const key = parseKeyList(readFileSync(file, 'utf8').trim())![0];
  expect(secretKeyRing()!.keys.map((k) => k.id)).toEqual([keyId(key)]);
  expect(configureSecretEncryption(cfg)).toEqual({ source: 'file', file });
  expect(readFileSync(file, 'utf8').trim()).toBe(key.toString('base64'));
  expect(sealSecret('ep_1', 'whsec_x')).toMatch(`enc:v1:${keyId(key)}:`);
});

test('when the separate api/worker start without SECRET_ENCRYPTION_KEYS, then they refuse naming the variable, unless SECRET_ENCRYPTION=off (plaintext)', () => {
  expect(() => configureSecretEncryption(loadConfig({ DATA_DIR: dir }))).toThrow(/SECRET_ENCRYPTION_KEYS must be set/);
  expect(configureSecretEncryption(loadConfig({ DATA_DIR: dir, SECRET_ENCRYPTION: 'off' }))).toEqual({ source: 'off' });
  expect(secretKeyRing()).toBeNull();
  expect(sealSecret('ep_1', 'whsec_x')).toBe('whsec_x');
  const keys = [randomBytes(32), randomBytes(32)];
  expect(configureSecretEncryption(loadConfig({ SECRET_ENCRYPTION_KEYS: keys.map((k) => k.toString('base64')).join(',') }))).toEqual({ source: 'SECRET_ENCRYPTION_KEYS' });
  expect(secretKeyRing()!.keys.map((k) => k.id)).toEqual(keys.map(keyId));
});

test('when the re-encryption command finds no key, then it does not generate one', () => {
  expect(() => configureSecretEncryption(loadConfig({ DATA_DIR: dir }, { embedded: true }), { generate: false })).toThrow(/SECRET_ENCRYPTION_KEYS must be set/);
  expect(() => statSync(join(dir, 'secret-key'))).toThrow();
});
