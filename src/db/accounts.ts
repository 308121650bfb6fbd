import { createHash, timingSafeEqual } from 'node:crypto';
import { newId } from '../domain/ids';
import { createApiKey } from './apiKeys';
import type { Queryable } from './database';
import { PLATFORM } from './operational';
import { statementText } from './statementText';

export type Plan = 'free' | 'paid';
export interface AccountRow {
  id: string;
  name: string;
  plan: Plan;
  created_at: Date;
  updated_at: Date;
}

export async function createAccount(tx: Queryable, input: { name: string; plan: Plan }): Promise<{ account: AccountRow; apiKey: string }> {
  const id = newId('acc');
  const [account] = await tx.query<AccountRow>('insert into accounts (id, name, plan) values ($1, $2, $3) returning *', [id, input.name, input.plan]);
  const { key: apiKey } = await createApiKey(tx, id, 'default');
  return { account, apiKey };
}

const GET_ACCOUNT_SQL = statementText(() => `select * from accounts where id = $1 and id <> ${PLATFORM}`);

export async function getAccount(db: Queryable, id: string): Promise<AccountRow | undefined> {
  // The internal account of the operational endpoints is no customer's: not found.
  const [row] = await db.query<AccountRow>(GET_ACCOUNT_SQL(), [id]);
  return row;
}

export async function updateAccount(db: Queryable, id: string, patch: { name?: string; plan?: Plan }): Promise<AccountRow | undefined> {
  const [row] = await db.query<AccountRow>(`update accounts set name = coalesce($2, name), plan = coalesce($3, plan), updated_at = now() where id = $1 returning *`, [
    id,
    patch.name ?? null,
    patch.plan ?? null,
  ]);
  return row;
}

export function tokensEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
