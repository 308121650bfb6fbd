import type { EventType } from '../domain/eventCatalog';
import type { Queryable } from './database';
import { PLATFORM } from './operational';
import { statementText } from './statementText';

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

/** One event's acceptance (see acceptEvents). */
export async function acceptEvent(db: Queryable, e: EventToAccept): Promise<AcceptedEvent> {
  const [accepted] = await acceptEvents(db, [e]);
  return accepted;
}

const ACCEPT_EVENTS_SQL = statementText(
  () =>
    `with input as (
       select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::timestamptz[], $9::text[], $10::text[])
         with ordinality as i(id, account_id, event_type, body, idempotency_key, request_hash, is_test, created_at, only_endpoint_id, delivery_id_prefix, n)
     ), acc as (
       select i.n, a.plan from input i join accounts a on a.id = i.account_id and a.id <> ${PLATFORM} -- operational events are emitted, never published
     ), ev as (
       insert into events (id, account_id, event_type, body, idempotency_key, request_hash, is_test, created_at)
       select i.id, i.account_id, i.event_type, i.body, i.idempotency_key, i.request_hash, i.is_test, i.created_at
       from input i join acc on acc.n = i.n order by i.n
       on conflict (account_id, idempotency_key) do nothing
       returning id
     ), eps as (
       select i.n, e.id, e.url from input i join acc on acc.n = i.n join endpoints e on e.account_id = i.account_id
       where e.deleted_at is null
         and case when i.only_endpoint_id is null then acc.plan = 'paid' and e.enabled and e.event_types ? i.event_type else e.id = i.only_endpoint_id end
     ), dl as (
       insert into deliveries (id, account_id, event_id, endpoint_id, event_type, created_at, updated_at)
       select i.delivery_id_prefix || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16), i.account_id, ev.id, eps.id, i.event_type, i.created_at, i.created_at
       from eps join input i on i.n = eps.n join ev on ev.id = i.id
       returning id, endpoint_id, event_id
     )
     select i.n::int as n, acc.n is not null as account_found, ev.id as event_id,
       coalesce((select json_agg(json_build_object('id', dl.id, 'endpointId', dl.endpoint_id, 'url', eps.url) order by dl.endpoint_id)
                 from dl join eps on eps.n = i.n and eps.id = dl.endpoint_id where dl.event_id = i.id), '[]'::json) as deliveries
     from input i left join acc on acc.n = i.n left join ev on ev.id = i.id
     order by i.n`,
);

/**
 * The durable acceptance in one statement (atomic without an explicit transaction, which on
 * PGlite would hold every other query for its whole length), for one event or several (group
 * commit, src/services/groupCommit.ts): each event, and one delivery per enabled endpoint of a
 * paid account subscribed to its type — or only its `onlyEndpointId`. On PGlite a statement's
 * fixed cost is most of an acceptance's, so several share it. Atomic as a whole: any error fails
 * them all (the caller then takes them one by one, so one bad event cannot fail the others).
 */
export async function acceptEvents(db: Queryable, events: EventToAccept[]): Promise<AcceptedEvent[]> {
  const col = <K extends keyof EventToAccept>(k: K) => events.map((e) => e[k] ?? null);
  const rows = await db.query<{ n: number; account_found: boolean; event_id: string | null; deliveries: AcceptedEvent['deliveries'] | string }>(ACCEPT_EVENTS_SQL(), [
    col('id'),
    col('accountId'),
    col('eventType'),
    col('body'),
    col('idempotencyKey'),
    col('requestHash'),
    col('isTest'),
    col('createdAt'),
    col('onlyEndpointId'),
    col('deliveryIdPrefix'),
  ]);
  return rows.map((row) => ({
    accountFound: row.account_found,
    eventId: row.event_id ?? undefined,
    deliveries: typeof row.deliveries === 'string' ? JSON.parse(row.deliveries) : row.deliveries,
  }));
}
