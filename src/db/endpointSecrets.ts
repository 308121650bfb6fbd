import type { CustomHeaders } from '../domain/customHeaders';
import { isCurrent, isEncrypted, open, seal, type KeyRing } from '../domain/secretBox';
import type { Queryable } from './database';

/**
 * The process's key ring for endpoint signing secrets. Set once at start-up
 * (`configureSecretEncryption` in bootstrap, from SECRET_ENCRYPTION_KEYS or DATA_DIR/secret-key);
 * `null` = SECRET_ENCRYPTION=off (new secrets stored in plaintext). Unset = refuse to store or
 * read an encrypted secret, so a forgotten set-up never writes plaintext silently.
 */
let current: { ring: KeyRing | null } | undefined;

export function useSecretKeyRing(ring: KeyRing | null): void {
  current = { ring };
  opened.clear();
}

/**
 * Secrets opened lately, by endpoint and envelope: every attempt signs with its endpoint's secret
 * and opening one (AES-GCM) was a third of the signing's CPU at fan-out 20. An envelope carries a
 * random IV, so a rotated or re-sealed secret is a new key here; a failed open is never kept.
 */
const opened = new Map<string, string>();
const OPENED_MAX = 1_000;

function openCached(endpointId: string, stored: string): string {
  const key = `${endpointId}\0${stored}`;
  const hit = opened.get(key);
  if (hit !== undefined) return hit;
  const plain = open(secretKeyRing(), endpointId, stored);
  if (opened.size >= OPENED_MAX) opened.delete(opened.keys().next().value!);
  opened.set(key, plain);
  return plain;
}

export function secretKeyRing(): KeyRing | null {
  if (!current) throw new Error('secret encryption is not configured (bootstrap sets it from SECRET_ENCRYPTION_KEYS)');
  return current.ring;
}

/** The stored form of a signing secret of `endpointId`. */
export function sealSecret(endpointId: string, plaintext: string): string {
  const ring = secretKeyRing();
  return ring ? seal(ring, endpointId, plaintext) : plaintext;
}

/** The plaintext of a stored signing secret (legacy plaintext values read as they are). */
export function openSecret(endpointId: string, stored: string): string;
export function openSecret(endpointId: string, stored: string | null): string | null;
export function openSecret(endpointId: string, stored: string | null): string | null {
  if (stored === null) return null;
  return isEncrypted(stored) ? openCached(endpointId, stored) : stored;
}

/** Custom headers are bound to this id (not the endpoint id alone), so a sealed secret pasted into the headers column does not open. */
const headersAad = (endpointId: string) => `headers:${endpointId}`;

/** The stored form of an endpoint's custom headers (null: none), sealed like its signing secret. */
export function sealHeaders(endpointId: string, headers: CustomHeaders | null | undefined): string | null {
  if (!headers || Object.keys(headers).length === 0) return null;
  return sealSecret(headersAad(endpointId), JSON.stringify(headers));
}

export function openHeaders(endpointId: string, stored: string | null | undefined): CustomHeaders {
  if (!stored) return {};
  return JSON.parse(openSecret(headersAad(endpointId), stored)) as CustomHeaders;
}

export interface ReencryptCounts {
  endpoints: number;
  reencrypted: number;
  alreadyCurrent: number;
  /** Rows changed by someone else between read and write (a rotation): run again. */
  skipped: number;
}

/**
 * Re-encrypts every endpoint's secret, previous secret and custom headers (deleted endpoints too) under the
 * ring's newest key, plaintext ones included, in batches by id. Idempotent: values already
 * under the newest key are left alone. A row rotated meanwhile is skipped, not overwritten.
 */
export async function reencryptSecrets(db: Queryable, ring: KeyRing, opts: { batchSize?: number; onBatch?: (c: ReencryptCounts) => void } = {}): Promise<ReencryptCounts> {
  const batchSize = opts.batchSize ?? 500;
  const counts: ReencryptCounts = { endpoints: 0, reencrypted: 0, alreadyCurrent: 0, skipped: 0 };
  let after = '';
  for (;;) {
    const rows = await db.query<{ id: string; secret: string; previous_secret: string | null; headers: string | null }>(
      'select id, secret, previous_secret, headers from endpoints where id > $1 order by id limit $2',
      [after, batchSize],
    );
    if (rows.length === 0) break;
    for (const row of rows) {
      counts.endpoints++;
      const current = (v: string | null) => v === null || isCurrent(ring, v);
      if (current(row.secret) && current(row.previous_secret) && current(row.headers)) {
        counts.alreadyCurrent++;
        continue;
      }
      const reseal = (v: string | null, aad = row.id) => (v === null || isCurrent(ring, v) ? v : seal(ring, aad, open(ring, aad, v)));
      const updated = await db.query(
        `update endpoints set secret = $2, previous_secret = $3, headers = $6 where id = $1 and secret = $4 and previous_secret is not distinct from $5
           and headers is not distinct from $7 returning id`,
        [row.id, reseal(row.secret), reseal(row.previous_secret), row.secret, row.previous_secret, reseal(row.headers, headersAad(row.id)), row.headers],
      );
      if (updated.length) counts.reencrypted++;
      else counts.skipped++;
    }
    after = rows[rows.length - 1].id;
    opts.onBatch?.({ ...counts });
  }
  return counts;
}
