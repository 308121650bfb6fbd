import { createHash, randomBytes } from 'node:crypto';
import { newId } from '../domain/ids';
import type { Queryable } from './database';

/** An account API key as stored: only its hash and a short prefix to tell keys apart. */
export interface ApiKeyRow {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
}

/** API keys are high-entropy random strings, so an unsalted SHA-256 is a safe, indexable hash. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function newApiKey(): string {
  return `rrk_${randomBytes(32).toString('base64url')}`;
}

/** What a list shows of a key: enough to recognise it, never enough to use it. */
const prefixOf = (key: string) => key.slice(0, 12);

/** Issues a key; the caller shows it once (it is not stored). */
export async function createApiKey(db: Queryable, accountId: string, name: string): Promise<{ row: ApiKeyRow; key: string }> {
  const key = newApiKey();
  const [row] = await db.query<ApiKeyRow>(
    'insert into api_keys (id, account_id, key_hash, name, prefix) values ($1, $2, $3, $4, $5) returning id, account_id, name, prefix, created_at, last_used_at',
    [newId('key'), accountId, hashApiKey(key), name, prefixOf(key)],
  );
  return { row, key };
}

export async function listApiKeys(db: Queryable, accountId: string): Promise<ApiKeyRow[]> {
  return db.query<ApiKeyRow>('select id, account_id, name, prefix, created_at, last_used_at from api_keys where account_id = $1 and revoked_at is null order by id', [accountId]);
}

/** Revokes a live key of this account; false when there is none (another account's reads as none). */
export async function revokeApiKey(db: Queryable, accountId: string, id: string): Promise<boolean> {
  const rows = await db.query('update api_keys set revoked_at = now() where id = $1 and account_id = $2 and revoked_at is null returning id', [id, accountId]);
  return rows.length > 0;
}

/**
 * The account of a live key. `last_used_at` is written at most once a minute per key, so a busy
 * key costs a read, not a write, per request.
 */
export async function accountIdForApiKey(db: Queryable, key: string): Promise<string | undefined> {
  return (await liveApiKey(db, key))?.accountId;
}

/** The id and account of a live key (the id keys its rate limit); see accountIdForApiKey. */
export async function liveApiKey(db: Queryable, key: string): Promise<{ id: string; accountId: string } | undefined> {
  const [row] = await db.query<{ id: string; account_id: string; last_used_at: Date | null }>(
    'select id, account_id, last_used_at from api_keys where key_hash = $1 and revoked_at is null',
    [hashApiKey(key)],
  );
  if (!row) return undefined;
  if (!row.last_used_at || Date.now() - new Date(row.last_used_at).getTime() > 60_000) {
    await db.query(`update api_keys set last_used_at = now() where id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute')`, [row.id]);
  }
  return { id: row.id, accountId: row.account_id };
}
