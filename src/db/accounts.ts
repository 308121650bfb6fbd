import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { newId } from '../domain/ids';
import type { Queryable } from './database';

export type Plan = 'free' | 'paid';
export interface AccountRow {
  id: string;
  name: string;
  plan: Plan;
  created_at: Date;
  updated_at: Date;
}

/** API keys are high-entropy random strings, so an unsalted SHA-256 is a safe, indexable hash. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function newApiKey(): string {
  return `rrk_${randomBytes(32).toString('base64url')}`;
}

export async function createAccount(tx: Queryable, input: { name: string; plan: Plan }): Promise<{ account: AccountRow; apiKey: string }> {
  const id = newId('acc');
  const apiKey = newApiKey();
  const [account] = await tx.query<AccountRow>('insert into accounts (id, name, plan) values ($1, $2, $3) returning *', [id, input.name, input.plan]);
  await tx.query('insert into api_keys (id, account_id, key_hash) values ($1, $2, $3)', [newId('key'), id, hashApiKey(apiKey)]);
  return { account, apiKey };
}

export async function getAccount(db: Queryable, id: string): Promise<AccountRow | undefined> {
  const [row] = await db.query<AccountRow>('select * from accounts where id = $1', [id]);
  return row;
}

export async function updateAccount(db: Queryable, id: string, patch: { name?: string; plan?: Plan }): Promise<AccountRow | undefined> {
  const [row] = await db.query<AccountRow>(
    `update accounts set name = coalesce($2, name), plan = coalesce($3, plan), updated_at = now() where id = $1 returning *`,
    [id, patch.name ?? null, patch.plan ?? null],
  );
  return row;
}

export async function accountIdForApiKey(db: Queryable, key: string): Promise<string | undefined> {
  const [row] = await db.query<{ account_id: string }>('select account_id from api_keys where key_hash = $1', [hashApiKey(key)]);
  return row?.account_id;
}

export function tokensEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
