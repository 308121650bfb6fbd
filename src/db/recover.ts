import type { Queryable } from './database';

export interface Recovered {
  id: string;
  series: number;
  event_type: string;
  /** What it was: `undeliverable`, `cancelled`, or `missing` (a new delivery of an event it never got). */
  kind: 'undeliverable' | 'cancelled' | 'missing';
}

/**
 * Starts a new attempt series for the endpoint's finished deliveries of the given statuses created
 * since `since`, oldest first, at most `limit`, in one statement. Only a finished one is taken
 * (the status is checked under the row lock), so concurrent or repeated calls never start the same
 * delivery twice; a delivery whose payload retention purged stays as it is.
 */
export async function resendFinished(db: Queryable, endpointId: string, statuses: ('undeliverable' | 'cancelled')[], since: Date, limit: number): Promise<Recovered[]> {
  if (statuses.length === 0 || limit <= 0) return [];
  return db.query<Recovered>(
    `with pick as (
       select d.id, d.status from deliveries d
       where d.endpoint_id = $1 and d.status = any($2::text[]) and d.created_at >= $3
         and not exists (select 1 from events e where e.id = d.event_id and e.purged_at is not null)
       order by d.created_at, d.id limit $4
       for update of d skip locked
     )
     update deliveries d set series = d.series + 1, status = 'pending', final_reason = null, finished_at = null, next_attempt_at = now(), workflow_id = null, updated_at = now(),
       held_reason = null, held_detail = null, held_since = null, held_at = null, held_wakeups = 0
     from pick where d.id = pick.id and d.status = pick.status
     returning d.id, d.series, d.event_type, pick.status as kind`,
    [endpointId, statuses, since, limit],
  );
}

/**
 * "Replay missing": one new delivery to this endpoint for each event of its account published
 * since `since` (and since the endpoint exists), of a type it subscribes to now, that has none
 * (e.g. published while it was disabled), oldest first, at most `limit`. Test events and purged
 * payloads are left out. Idempotent: a delivery per (event, endpoint) is unique, so a repeated or
 * concurrent call creates nothing twice.
 */
export async function createMissing(db: Queryable, endpointId: string, since: Date, limit: number): Promise<Recovered[]> {
  if (limit <= 0) return [];
  return db.query<Recovered>(
    `with ep as (
       select id, account_id, event_types, created_at from endpoints where id = $1 and deleted_at is null
     )
     insert into deliveries (id, account_id, event_id, endpoint_id, event_type)
     select rr_new_id('dlv'), ev.account_id, ev.id, ep.id, ev.event_type
     from ep join events ev on ev.account_id = ep.account_id and ev.created_at >= greatest($2::timestamptz, ep.created_at)
     where not ev.is_test and ev.purged_at is null and ep.event_types ? ev.event_type
       and not exists (select 1 from deliveries d where d.event_id = ev.id and d.endpoint_id = ep.id)
     order by ev.created_at, ev.id
     limit $3
     on conflict (event_id, endpoint_id) do nothing
     returning id, series, event_type, 'missing' as kind`,
    [endpointId, since, limit],
  );
}

export interface ResendFilter {
  status: 'undeliverable' | 'cancelled';
  endpointId?: string;
  eventType?: string;
  since?: Date;
  until?: Date;
}

/**
 * Bulk resend: a new attempt series for each finished delivery of the account matching the
 * filter (the delivery log's filters), oldest first, at most `limit`, in one statement. Only
 * deliveries of live, enabled endpoints, with their payload kept, are taken; the status is
 * checked under the row lock, so a repeated call does not take a resent (now pending) one again.
 */
export async function resendMatching(
  db: Queryable,
  accountId: string,
  f: ResendFilter,
  limit: number,
): Promise<(Omit<Recovered, 'kind'> & { endpoint_id: string; url: string })[]> {
  return db.query(
    `with pick as (
       select d.id, d.status, ep.url from deliveries d join endpoints ep on ep.id = d.endpoint_id
       where d.account_id = $1 and d.status = $2 and ($3::text is null or d.endpoint_id = $3) and ($4::text is null or d.event_type = $4)
         and ($5::timestamptz is null or d.created_at >= $5) and ($6::timestamptz is null or d.created_at < $6)
         and ep.enabled and ep.deleted_at is null
         and not exists (select 1 from events e where e.id = d.event_id and e.purged_at is not null)
       order by d.created_at, d.id limit $7
       for update of d skip locked
     )
     update deliveries d set series = d.series + 1, status = 'pending', final_reason = null, finished_at = null, next_attempt_at = now(), workflow_id = null, updated_at = now(),
       held_reason = null, held_detail = null, held_since = null, held_at = null, held_wakeups = 0
     from pick where d.id = pick.id and d.status = pick.status
     returning d.id, d.series, d.event_type, d.endpoint_id, pick.url`,
    [accountId, f.status, f.endpointId ?? null, f.eventType ?? null, f.since ?? null, f.until ?? null, limit],
  );
}

/**
 * What a bulk resend with this filter would do, without doing it: `count` deliveries it would
 * resend (the same conditions as resendMatching) and `skipped` more that match the filter but
 * are left out (endpoint disabled or deleted, payload purged). The settings page's confirmation.
 */
export async function countResendMatching(db: Queryable, accountId: string, f: ResendFilter): Promise<{ count: number; skipped: number }> {
  const [row] = await db.query<{ count: number; skipped: number }>(
    `select count(*) filter (where ok)::int as count, count(*) filter (where not ok)::int as skipped from (
       select (ep.enabled and ep.deleted_at is null and e.purged_at is null) as ok
       from deliveries d join endpoints ep on ep.id = d.endpoint_id join events e on e.id = d.event_id
       where d.account_id = $1 and d.status = $2 and ($3::text is null or d.endpoint_id = $3) and ($4::text is null or d.event_type = $4)
         and ($5::timestamptz is null or d.created_at >= $5) and ($6::timestamptz is null or d.created_at < $6)
     ) m`,
    [accountId, f.status, f.endpointId ?? null, f.eventType ?? null, f.since ?? null, f.until ?? null],
  );
  return { count: Number(row.count), skipped: Number(row.skipped) };
}
