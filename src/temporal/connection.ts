import type { TLSConfig } from '@temporalio/client';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config';
import { ConfigError } from '../config';

/** What NativeConnection.connect (worker) and Connection.connect (client) both take. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

type TemporalSettings = Pick<
  Config,
  'TEMPORAL_ADDRESS' | 'TEMPORAL_TLS' | 'TEMPORAL_TLS_CA' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY' | 'TEMPORAL_TLS_SERVER_NAME' | 'TEMPORAL_API_KEY'
>;

/**
 * The connection options of a real Temporal cluster (self-hosted with TLS or mTLS, or
 * Temporal Cloud with mTLS or an API key), from the TEMPORAL_* settings. The PEM files are
 * read here, once; every mistake is a ConfigError naming the variable, before any connect.
 * Every connection the api and worker open uses this, so one process never mixes two.
 */
export function temporalConnectionOptions(cfg: TemporalSettings, readFile: (path: string) => Buffer = readFileSync): TemporalConnectionOptions {
  const address = cfg.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  if (Boolean(cfg.TEMPORAL_TLS_CERT) !== Boolean(cfg.TEMPORAL_TLS_KEY)) {
    throw new ConfigError(
      `${cfg.TEMPORAL_TLS_CERT ? 'TEMPORAL_TLS_CERT is set without TEMPORAL_TLS_KEY' : 'TEMPORAL_TLS_KEY is set without TEMPORAL_TLS_CERT'}: mTLS needs both the client certificate and its private key.`,
    );
  }
  const needsTls = (['TEMPORAL_API_KEY', 'TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_SERVER_NAME'] as const).filter((k) => cfg[k] !== undefined);
  if (cfg.TEMPORAL_TLS === false && needsTls.length) {
    throw new ConfigError(
      `TEMPORAL_TLS=false contradicts ${needsTls.join(', ')}: ${needsTls.includes('TEMPORAL_API_KEY') ? 'an API key is never sent over plaintext' : 'these only apply to a TLS connection'}. Unset TEMPORAL_TLS (or set it true).`,
    );
  }
  const apiKey = cfg.TEMPORAL_API_KEY;
  if (!(cfg.TEMPORAL_TLS ?? needsTls.length > 0)) return { address };

  const tls: TLSConfig = {};
  const pem = (name: 'TEMPORAL_TLS_CA' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY'): Buffer => {
    const path = cfg[name]!;
    let data: Buffer;
    try {
      data = readFile(path);
    } catch (err) {
      throw new ConfigError(`${name}=${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
    }
    if (!data.toString('utf8').includes('-----BEGIN ')) throw new ConfigError(`${name}=${path}: not a PEM file (no -----BEGIN line).`);
    return data;
  };
  if (cfg.TEMPORAL_TLS_CA) tls.serverRootCACertificate = pem('TEMPORAL_TLS_CA');
  if (cfg.TEMPORAL_TLS_CERT) {
    tls.clientCertPair = { crt: pem('TEMPORAL_TLS_CERT'), key: pem('TEMPORAL_TLS_KEY') };
    checkClientCertificate(cfg.TEMPORAL_TLS_CERT, tls.clientCertPair.crt as Buffer, tls.clientCertPair.key as Buffer);
  }
  if (cfg.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = cfg.TEMPORAL_TLS_SERVER_NAME;
  return { address, tls, ...(apiKey ? { apiKey } : {}) };
}

/**
 * Mistakes that otherwise surface only as a transport error deep in the worker's Rust core:
 * a key that does not belong to the certificate, and an X.509 v1 certificate (what
 * `openssl x509 -req` makes without `-extfile`), which the client accepts but the worker's
 * TLS stack refuses with "UnsupportedCertVersion".
 */
function checkClientCertificate(path: string, crt: Buffer, key: Buffer): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(crt);
  } catch (err) {
    throw new ConfigError(`TEMPORAL_TLS_CERT=${path}: not a readable certificate (${(err as Error).message}).`);
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new ConfigError(`TEMPORAL_TLS_KEY: not a readable private key (${(err as Error).message}).`);
  }
  if (!matches) throw new ConfigError(`TEMPORAL_TLS_KEY is not the private key of the certificate in TEMPORAL_TLS_CERT=${path}.`);
  if (x509Version(cert.raw) === 1)
    throw new ConfigError(
      `TEMPORAL_TLS_CERT=${path}: an X.509 v1 certificate, which the worker's TLS stack refuses; issue a v3 one (openssl x509 -req … -extfile with extendedKeyUsage=clientAuth).`,
    );
}

/** 1 when the DER certificate's TBSCertificate has no explicit [0] version field, else 3 (or 2). */
function x509Version(der: Buffer): number {
  const skipHeader = (at: number) => (der[at + 1] < 0x80 ? at + 2 : at + 2 + (der[at + 1] & 0x7f)); // tag + length octets
  const tbs = skipHeader(0); // inside Certificate SEQUENCE: TBSCertificate SEQUENCE
  const first = skipHeader(tbs);
  return der[first] === 0xa0 ? der[skipHeader(first) + 2] + 1 : 1; // [0] EXPLICIT INTEGER version (0-based)
}

/** For start-up logs: how the process reaches Temporal, without the key. */
export function describeTemporalConnection(o: TemporalConnectionOptions): string {
  if (!o.tls) return 'plaintext';
  return ['tls', o.tls.clientCertPair && 'client certificate', o.apiKey && 'API key', o.tls.serverRootCACertificate && 'private CA'].filter(Boolean).join(', ');
}
