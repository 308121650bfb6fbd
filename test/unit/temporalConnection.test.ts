import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';
import { describeTemporalConnection, temporalConnectionOptions } from '../../src/temporal/connection';

let dir: string;
const files: Record<'ca' | 'crt' | 'key' | 'junk' | 'v1' | 'caKey', string> = { ca: '', crt: '', key: '', junk: '', v1: '', caKey: '' };

beforeAll(() => {
  // A real CA and a client certificate signed by it (the shapes a self-hosted cluster or
  // Temporal Cloud's mTLS hands out), made with openssl.
  dir = mkdtempSync(join(tmpdir(), 'rr-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=rr test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=rr-worker');
  writeFileSync(join(dir, 'client.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '1', '-extfile', 'client.ext');
  // Without -extfile openssl issues an X.509 v1 certificate.
  ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client-v1.pem', '-days', '1');
  Object.assign(files, {
    ca: join(dir, 'ca.pem'),
    crt: join(dir, 'client.pem'),
    key: join(dir, 'client.key'),
    junk: join(dir, 'junk.txt'),
    v1: join(dir, 'client-v1.pem'),
    caKey: join(dir, 'ca.key'),
  });
  writeFileSync(files.junk, 'not a certificate\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options = (env: Record<string, string>) => temporalConnectionOptions(loadConfig(env));
const configError = (env: Record<string, string>) => {
  try {
    options(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};

test('when no TLS setting is given, then the connection is plaintext to TEMPORAL_ADDRESS (127.0.0.1:7233 by default)', () => {
  expect(options({})).toEqual({ address: '127.0.0.1:7233' });
  expect(options({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_TLS: 'false' })).toEqual({ address: 'temporal:7233' });
  expect(describeTemporalConnection(options({}))).toBe('plaintext');
});

test('when TEMPORAL_TLS=true, then TLS verifies the server against the system CAs (no files)', () => {
  expect(options({ TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_TLS: 'true' })).toEqual({ address: 'temporal.example.com:7233', tls: {} });
});

test('when a CA, a client certificate and its key are set, then they are read into an mTLS config and TLS is on without TEMPORAL_TLS', () => {
  const o = options({
    TEMPORAL_ADDRESS: '10.0.0.5:7233',
    TEMPORAL_TLS_CA: files.ca,
    TEMPORAL_TLS_CERT: files.crt,
    TEMPORAL_TLS_KEY: files.key,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
  });
  expect(o.address).toBe('10.0.0.5:7233');
  expect(o.apiKey).toBeUndefined();
  expect(Buffer.from(o.tls!.serverRootCACertificate!).toString()).toMatch(/^-----BEGIN CERTIFICATE-----/);
  expect(Buffer.from(o.tls!.clientCertPair!.crt).toString()).toMatch(/^-----BEGIN CERTIFICATE-----/);
  expect(Buffer.from(o.tls!.clientCertPair!.key).toString()).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  expect(o.tls!.serverNameOverride).toBe('temporal.internal');
  expect(describeTemporalConnection(o)).toBe('tls, client certificate, private CA');
});

test('when TEMPORAL_API_KEY is set (Temporal Cloud), then TLS is on and the key is passed; the log description never shows it', () => {
  const o = options({ TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'rr-prod.a1b2c', TEMPORAL_API_KEY: 'eyJhbGciOi.secret-key' });
  expect(o).toEqual({ address: 'us-east-1.aws.api.temporal.io:7233', tls: {}, apiKey: 'eyJhbGciOi.secret-key' });
  expect(describeTemporalConnection(o)).toBe('tls, API key');
});

test('when TEMPORAL_TLS=false is set with an API key or a certificate, then start-up is refused (a key never goes out in clear)', () => {
  expect(configError({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' })).toMatch(/TEMPORAL_TLS=false contradicts TEMPORAL_API_KEY.*plaintext/);
  expect(configError({ TEMPORAL_TLS: 'no', TEMPORAL_TLS_CERT: files.crt, TEMPORAL_TLS_KEY: files.key })).toMatch(/TEMPORAL_TLS=false contradicts TEMPORAL_TLS_CERT/);
});

test('when a client certificate is set without its key (or the key without the certificate), then start-up is refused naming both', () => {
  expect(configError({ TEMPORAL_TLS_CERT: files.crt })).toMatch(/TEMPORAL_TLS_CERT is set without TEMPORAL_TLS_KEY/);
  expect(configError({ TEMPORAL_TLS_KEY: files.key })).toMatch(/TEMPORAL_TLS_KEY is set without TEMPORAL_TLS_CERT/);
});

test('when a file is missing or not PEM, then the error names the variable and the path', () => {
  expect(configError({ TEMPORAL_TLS_CA: join(dir, 'nope.pem') })).toMatch(/TEMPORAL_TLS_CA=.*nope\.pem: cannot read the file \(ENOENT\)/);
  expect(configError({ TEMPORAL_TLS_CERT: files.junk, TEMPORAL_TLS_KEY: files.key })).toMatch(/TEMPORAL_TLS_CERT=.*junk\.txt: not a PEM file/);
});

test('when the key does not belong to the certificate, or the certificate is X.509 v1, then start-up is refused before any connection', () => {
  expect(configError({ TEMPORAL_TLS_CERT: files.crt, TEMPORAL_TLS_KEY: files.caKey })).toMatch(/TEMPORAL_TLS_KEY is not the private key of the certificate in TEMPORAL_TLS_CERT=/);
  // The client accepts a v1 certificate, the worker's TLS stack (rustls) does not: "UnsupportedCertVersion".
  expect(configError({ TEMPORAL_TLS_CERT: files.v1, TEMPORAL_TLS_KEY: files.key })).toMatch(/X\.509 v1 certificate/);
  expect(() => options({ TEMPORAL_TLS_CERT: files.ca, TEMPORAL_TLS_KEY: files.caKey })).not.toThrow(); // v3, matching pair
});

test('when TEMPORAL_API_KEY is set but empty, then it is unset (plaintext, as before)', () => {
  expect(options({ TEMPORAL_API_KEY: '' })).toEqual({ address: '127.0.0.1:7233' });
});
