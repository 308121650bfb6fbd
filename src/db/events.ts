import type { EventType } from '../domain/eventCatalog';
import type { Queryable } from './database';

export interface EventRow {
  id: string;
  account_id: string;
  event_type: EventType;
  body: string;
  idempotency_key: string | null;
  request_hash: string | null;
  is_test: boolean;
  created_at: Date;
}

/** Inserts the event unless this account already used the idempotency key; undefined then. */
export async function insertEvent(
  tx: Queryable,
  row: { id: string; accountId: string; eventType: EventType; body: string; idempotencyKey?: string; requestHash?: string; isTest?: boolean; createdAt: Date },
): Promise<EventRow | undefined> {
  const [inserted] = await tx.query<EventRow>(
    `insert into events (id, account_id, event_type, body, idempotency_key, request_hash, is_test, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8)
     on conflict (account_id, idempotency_key) do nothing returning *`,
    [row.id, row.accountId, row.eventType, row.body, row.idempotencyKey ?? null, row.requestHash ?? null, row.isTest ?? false, row.createdAt],
  );
  return inserted;
}

export async function eventByIdempotencyKey(db: Queryable, accountId: string, key: string): Promise<EventRow | undefined> {
  const [row] = await db.query<EventRow>('select * from events where account_id = $1 and idempotency_key = $2', [accountId, key]);
  return row;
}
