import type { EventType } from '../domain/eventCatalog';
import type { Queryable } from './database';
import { PLATFORM } from './operational';

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

export async function eventByIdempotencyKey(db: Queryable, accountId: string, key: string): Promise<EventRow | undefined> {
  const [row] = await db.query<EventRow>('select * from events where account_id = $1 and idempotency_key = $2', [accountId, key]);
  return row;
}

export interface AcceptedEvent {
  accountFound: boolean;
  /** Undefined when the idempotency key was already used (nothing was inserted). */
  eventId?: string;
  deliveries: { id: string; endpointId: string; url: string }[];
}

/**
 * The durable acceptance in one statement (atomic without an explicit transaction, which on
 * PGlite would hold every other query for its whole length): the event, and one delivery per
 * enabled endpoint of a paid account subscribed to the type — or only `onlyEndpointId`.
 */
export interface EventToAccept {
  id: string;
  accountId: string;
  eventType: EventType;
  body: string;
  idempotencyKey?: string;
  requestHash: string;
  isTest: boolean;
  createdAt: Date;
  onlyEndpointId?: string;
  deliveryIdPrefix: string;
}

export async function acceptEvent(db: Queryable, e: EventToAccept): Promise<AcceptedEvent> {
  const [row] = await db.query<{ account_found: number; event_id: string | null; deliveries: AcceptedEvent['deliveries'] }>(
    `with acc as (
       select id, plan from accounts where id = $1 and id <> ${PLATFORM} -- operational events are emitted, never published
     ), ev as (
       insert into events (id, account_id, event_type, body, idempotency_key, request_hash, is_test, created_at)
       select $2, acc.id, $3, $4, $5, $6, $7, $8 from acc
       on conflict (account_id, idempotency_key) do nothing
       returning id
     ), eps as (
       select e.id, e.url from endpoints e join acc on acc.id = e.account_id
       where e.deleted_at is null
         and case when $9::text is null then acc.plan = 'paid' and e.enabled and e.event_types ? $3 else e.id = $9 end
     ), dl as (
       insert into deliveries (id, account_id, event_id, endpoint_id, event_type, created_at, updated_at)
       select $10 || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16), $1, ev.id, eps.id, $3, $8, $8
       from eps cross join ev
       returning id, endpoint_id
     )
     select (select count(*) from acc)::int as account_found, (select id from ev) as event_id,
       coalesce((select json_agg(json_build_object('id', dl.id, 'endpointId', dl.endpoint_id, 'url', eps.url) order by dl.endpoint_id)
                 from dl join eps on eps.id = dl.endpoint_id), '[]'::json) as deliveries`,
    [e.accountId, e.id, e.eventType, e.body, e.idempotencyKey ?? null, e.requestHash, e.isTest, e.createdAt, e.onlyEndpointId ?? null, e.deliveryIdPrefix],
  );
  const deliveries = typeof row.deliveries === 'string' ? JSON.parse(row.deliveries) : row.deliveries;
  return { accountFound: row.account_found > 0, eventId: row.event_id ?? undefined, deliveries };
}
