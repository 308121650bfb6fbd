import type { DeliveryStatus } from '../domain/errors';
import { LATENCY_BOUNDS_MS } from '../domain/endpointStats';
import type { EndpointLimitsInfo } from './endpointLimits';
import type { Queryable } from './database';
import { GENERIC_PLAN } from './sqlMarkers';
import { healthFromJson, type EndpointHealthRow } from './endpointHealth';
import { emitOperational, isoSql } from './operational';
import { statementText } from './statementText';

export interface DeliveryRow {
  id: string;
  account_id: string;
  event_id: string;
  endpoint_id: string;
  event_type: string;
  status: DeliveryStatus;
  series: number;
  dispatched_series: number;
  /** The workflow of that confirmed start: its first-attempt batch, or `delivery-<id>` (null before migration 16). */
  dispatched_workflow_id: string | null;
  attempt_count: number;
  last_attempt_at: Date | null;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  finished_at: Date | null;
  final_reason: string | null;
  /** The workflow that owns the current series' attempts (null until one claims it). */
  workflow_id: string | null;
  /** Circuit breaker: why its last wake-up(s) sent nothing (`circuit_open`, `probing`), see src/db/endpointHealth.ts. */
  held_reason: string | null;
  held_detail: string | null;
  /** First and latest held wake-up since its last real attempt. */
  held_since: Date | null;
  held_at: Date | null;
  /** Held wake-ups in this series (each took one of the activity's retry attempts without a request). */
  held_wakeups: number;
  /** A recovery drain that claimed it sends it until then. */
  lease_until: Date | null;
  /** The one activity execution that may send it now (its fence), and until when: see claimForAttempt. */
  attempt_token: string | null;
  attempt_lease_until: Date | null;
  created_at: Date;
  updated_at: Date;
  /** Its event is a test event ("send test", "send example"): read with the delivery by getDelivery and listDeliveries. */
  is_test?: boolean;
}

export interface AttemptRow {
  delivery_id: string;
  attempt: number;
  series: number;
  started_at: Date;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  response_body: string | null;
  /** What was sent (custom header values redacted) and what of the answer is kept: null before migration 17, and for no answer. */
  request_headers: Record<string, string> | null;
  response_headers: Record<string, string> | null;
}

export async function deliveriesOfEvent(db: Queryable, eventId: string): Promise<DeliveryRow[]> {
  return db.query<DeliveryRow>('select * from deliveries where event_id = $1 order by id', [eventId]);
}

export async function getDelivery(db: Queryable, accountId: string, id: string): Promise<DeliveryRow | undefined> {
  const [row] = await db.query<DeliveryRow>(
    'select d.*, (select e.is_test from events e where e.id = d.event_id) as is_test from deliveries d where d.id = $1 and d.account_id = $2',
    [id, accountId],
  );
  return row;
}

export async function attemptsOf(db: Queryable, deliveryId: string): Promise<AttemptRow[]> {
  return db.query<AttemptRow>('select * from delivery_attempts where delivery_id = $1 order by attempt', [deliveryId]);
}

export interface DeliveryFilter {
  status?: DeliveryStatus;
  endpointId?: string;
  eventType?: string;
  /** Created at or after / before (the delivery log's date range). */
  since?: Date;
  until?: Date;
  eventId?: string;
  deliveryId?: string;
  /** Only test deliveries (true) or only real ones (false). */
  test?: boolean;
  /** Exclusive upper bound on id (ids sort by creation time). */
  before?: string;
  limit: number;
}

/** Newest first; keyset-paged on the time-sortable id (the account's (account_id, id) index). */
export async function listDeliveries(db: Queryable, accountId: string, f: DeliveryFilter): Promise<DeliveryRow[]> {
  return db.query<DeliveryRow>(
    `select d.*, e.is_test from deliveries d join events e on e.id = d.event_id
     where d.account_id = $1
       and ($2::text is null or d.status = $2) and ($3::text is null or d.endpoint_id = $3)
       and ($4::text is null or d.event_type = $4) and ($5::text is null or d.id < $5)
       and ($7::timestamptz is null or d.created_at >= $7) and ($8::timestamptz is null or d.created_at < $8)
       and ($9::text is null or d.event_id = $9) and ($10::text is null or d.id = $10)
       and ($11::boolean is null or e.is_test = $11)
     order by d.id desc limit $6`,
    [
      accountId,
      f.status ?? null,
      f.endpointId ?? null,
      f.eventType ?? null,
      f.before ?? null,
      f.limit,
      f.since ?? null,
      f.until ?? null,
      f.eventId ?? null,
      f.deliveryId ?? null,
      f.test ?? null,
    ],
  );
}

const MARK_DISPATCHED_SQL = statementText(
  () =>
    `${GENERIC_PLAN}update deliveries d set dispatched_series = greatest(d.dispatched_series, t.series),
       dispatched_workflow_id = case when t.series > d.dispatched_series or d.dispatched_workflow_id is null
                                       or (t.series = d.dispatched_series and t.workflow_id not like 'batch-%') then t.workflow_id
                                     else d.dispatched_workflow_id end
     from (select * from unnest($1::text[], $2::int[], $3::text[]) as u(id, series, workflow_id)) t where d.id = any($1::text[]) and d.id = t.id`,
);

/**
 * Records that these deliveries' workflows were started (one statement for a whole batch), and
 * which: a retry workflow (`delivery-…`) confirmed for a series is kept over its batch, whose
 * start may be recorded after the batch already handed the delivery over.
 */
export async function markDispatched(db: Queryable, started: { id: string; series: number; workflowId: string }[]): Promise<void> {
  await db.query(MARK_DISPATCHED_SQL(), [started.map((s) => s.id), started.map((s) => s.series), started.map((s) => s.workflowId)]);
}

const MARK_FINISHED_DISPATCHED_SQL = statementText(
  () =>
    `${GENERIC_PLAN}update deliveries d set dispatched_series = d.series
     where d.id = any($1::text[]) and d.dispatched_series < d.series and d.status <> 'pending'`,
);

/**
 * Records as dispatched those of these deliveries that are finished already (a first attempt sent
 * from the process found them so): nothing is left to start for them, and the reconciler would
 * otherwise try again on every pass. A pending one is left to whoever owns it.
 */
export async function markFinishedDispatched(db: Queryable, targets: { id: string; series: number }[]): Promise<void> {
  await db.query(MARK_FINISHED_DISPATCHED_SQL(), [targets.map((t) => t.id)]);
}

/** An accepted delivery with what its dispatch needs (undispatched, takeAccepted). */
export interface AcceptedTarget {
  id: string;
  series: number;
  meta: { accountId: string; endpointId: string; eventType: string; url: string };
}
interface TargetRow {
  id: string;
  series: number;
  account_id: string;
  endpoint_id: string;
  event_type: string;
  url: string;
}
const targetOf = (r: TargetRow): AcceptedTarget => ({
  id: r.id,
  series: r.series,
  meta: { accountId: r.account_id, endpointId: r.endpoint_id, eventType: r.event_type, url: r.url },
});

/** Accepted deliveries whose workflow start was not confirmed `olderThanMs` after the last change, with what a start needs. */
export async function undispatched(db: Queryable, olderThanMs: number, limit: number, accountId?: string): Promise<AcceptedTarget[]> {
  const rows = await db.query<TargetRow>(
    `select d.id, d.series, d.account_id, d.endpoint_id, d.event_type, e.url from deliveries d join endpoints e on e.id = d.endpoint_id
     where d.dispatched_series < d.series and d.updated_at < now() - ($1::bigint * interval '1 millisecond')
       -- claimed and under an attempt's lease: its sender is alive (an inline first attempt is not dispatched until it ends)
       and (d.attempt_lease_until is null or d.attempt_lease_until <= now())
       -- taken from the outbox by a worker that is about to send it (takeAccepted)
       and (d.taken_until is null or d.taken_until <= now())
       and ($3::text is null or d.account_id = $3)
     order by d.updated_at limit $2`,
    [olderThanMs, limit, accountId ?? null],
  );
  return rows.map(targetOf);
}

/**
 * Takes newly accepted deliveries for this worker to send (src/services/acceptedOutbox.ts): those
 * of `ids` not yet dispatched, claimed, or taken by another worker, each then held for `holdMs`
 * (the reconciler and other takers skip it meanwhile; a worker that dies lets it go so). Two
 * workers taking the same ids get disjoint rows: the update's row locks decide. Its commit does
 * not wait for the WAL flush, as the claim's (claimForAttempt): a take lost with a crashed Postgres
 * server leaves the delivery to be taken or reconciled again, as after its hold ends.
 */
export async function takeAccepted(db: Queryable, ids: string[], holdMs: number): Promise<AcceptedTarget[]> {
  const rows = await db.query<TargetRow>(TAKE_ACCEPTED(), [ids, holdMs]);
  return rows.map(targetOf);
}

const TAKE_ACCEPTED = statementText(
  () => `update deliveries d set taken_until = now() + ($2::bigint * interval '1 millisecond')
   from endpoints e, (select set_config('synchronous_commit', 'off', true)) as async_commit
   where d.id = any($1::text[]) and e.id = d.endpoint_id and d.dispatched_series < d.series
     and (d.taken_until is null or d.taken_until <= now())
     and (d.attempt_lease_until is null or d.attempt_lease_until <= now())
   returning d.id, d.series, d.account_id, d.endpoint_id, d.event_type, e.url`,
);

/** Everything the delivery activity needs for one attempt, in one round trip. */
export interface AttemptContext {
  delivery: DeliveryRow;
  /** This workflow owns the attempt: it claimed the pending delivery, or already held it. */
  claimed: boolean;
  /** Claimed, and this activity execution holds its fence (asked for one): it may send it until its lease ends. */
  fenced: boolean;
  /** Not fenced because another execution's lease holds it: in this many ms that lease ends. */
  fence_wait_ms: number;
  body: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  /** The endpoint's custom headers as stored (sealed JSON; null: none): opened only to send. */
  custom_headers: string | null;
  endpoint_enabled: boolean;
  endpoint_deleted: boolean;
  plan: string;
  payload_purged: boolean;
  /** The endpoint's health record (null: healthy), read in the same statement for the circuit breaker. */
  health: EndpointHealthRow | null;
  /** The endpoint's rate limit, concurrency limit and 429 throttle, read in the same statement (null: none of them). */
  limits: EndpointLimitsInfo | null;
}

/** Sort order of every sender that picks among deliveries: oldest first, ties by id. */
export const oldestFirst = (a: Pick<AttemptContext, 'delivery'>, b: Pick<AttemptContext, 'delivery'>): number =>
  new Date(a.delivery.created_at).getTime() - new Date(b.delivery.created_at).getTime() || (a.delivery.id < b.delivery.id ? -1 : 1);

const CLAIM_FOR_ATTEMPT_SQL = statementText(
  () =>
    `${GENERIC_PLAN}with t as (
       select * from unnest($1::text[], $2::int[]) as t(id, series)
     ), claimed as (
       update deliveries d set workflow_id = $3::text,
         -- the fence is free: nobody's, this execution's own, or its lease ended
         attempt_token = case when d.attempt_token is null or d.attempt_token = $4::text or d.attempt_lease_until <= now() then $4::text else d.attempt_token end,
         attempt_lease_until = case when d.attempt_token is null or d.attempt_token = $4::text or d.attempt_lease_until <= now()
                                    then now() + $5::int * interval '1 millisecond' else d.attempt_lease_until end
       from t
       where d.id = any($1::text[]) and d.id = t.id and d.series = t.series and d.status = 'pending'
         and (d.workflow_id is null or ($4::text is not null and d.workflow_id = $3::text)
              -- a process that died during its inline first attempt: taken over once its lease ended
              or ($4::text is not null and d.workflow_id like 'inline-%' and (d.attempt_lease_until is null or d.attempt_lease_until <= now())))
       returning d.id, d.attempt_token is not distinct from $4::text and $4::text is not null as fenced
     ), claimed_map as materialized (
       -- one object, looked up per row: joining the CTE itself made a nested loop over it (its row
       -- count is unknown to the planner), quadratic in the batch (7 of 11 ms for 70 deliveries)
       select coalesce(jsonb_object_agg(id, fenced), '{}'::jsonb) as m from claimed
     )
     select row_to_json(d.*) as delivery,
            (c.m ? d.id or (d.status = 'pending' and d.series = t.series and d.workflow_id = $3::text)) as claimed,
            coalesce((c.m ->> d.id)::boolean, false) as fenced,
            greatest(0, coalesce(extract(epoch from d.attempt_lease_until - now()) * 1000, 0))::int as fence_wait_ms,
            ev.body, ep.url, ep.secret, ep.previous_secret, ep.previous_secret_expires_at, ep.headers as custom_headers,
            ep.enabled as endpoint_enabled, (ep.deleted_at is not null) as endpoint_deleted, a.plan,
            (ev.purged_at is not null) as payload_purged,
            row_to_json(h.*) as health,
            ep.rate_limit_per_second, ep.max_in_flight, lim.throttled_until, coalesce(lim.throttle_streak, 0) as throttle_streak
     from t join deliveries d on d.id = t.id and d.id = any($1::text[]) cross join claimed_map c
     -- this statement's own commit does not wait for its WAL flush (claimForAttempt says why that is safe)
     cross join (select set_config('synchronous_commit', 'off', true)) as async_commit
     join events ev on ev.id = d.event_id join endpoints ep on ep.id = d.endpoint_id
     join accounts a on a.id = d.account_id
     left join endpoint_health h on h.endpoint_id = d.endpoint_id
     left join endpoint_limits lim on lim.endpoint_id = d.endpoint_id`,
);

/**
 * Loads the attempt context of each delivery and claims the pending ones of the given series for
 * `workflowId` when nobody owns them yet, in one statement. A delivery owned by another workflow,
 * or of another series (resent since), comes back with claimed = false: this workflow must not
 * send it.
 *
 * With a `fence`, the claim also takes the delivery's attempt fence for this activity execution
 * (`token`, unique per execution) for `leaseMs`, unless another execution's lease still holds it:
 * then fenced = false and fence_wait_ms says when it ends. The owner alone cannot tell two
 * executions of one workflow apart (a timed-out attempt still running and its retry); the fence
 * can. The lease starts at the statement's start (now()), so it ends no earlier than `leaseMs`
 * after the caller sent the statement: a request started before `leaseMs` minus its own timeout
 * has passed on the caller's clock has ended before anyone else can take the fence.
 *
 * Its commit does not wait for the WAL flush (`synchronous_commit = off` for this statement's
 * transaction alone; run it outside a transaction): the claim is on the path of every first
 * attempt, and its fsync was one of the two each delivery waited for before its POST. Other
 * sessions see the claim at once as before, so exclusivity is unchanged; only a crash of the
 * Postgres server itself can lose it, within ~0.6 s (3 × wal_writer_delay), and only when nothing
 * committed after it was flushed (the WAL is one sequence: the attempt's durable record flushes
 * its claim too). What such a crash leaves is a delivery whose attempt was in flight and is not
 * recorded, resent later, as after a crash between a durable claim and the record.
 */
export async function claimForAttempt(
  db: Queryable,
  targets: { id: string; series: number }[],
  workflowId: string,
  fence?: { token: string; leaseMs: number },
): Promise<AttemptContext[]> {
  // Without a fence, writes only when the owner changes (retry attempts of an owned delivery are plain reads).
  const rows = await db.query<Record<string, unknown>>(CLAIM_FOR_ATTEMPT_SQL(), [
    targets.map((t) => t.id),
    targets.map((t) => t.series),
    workflowId,
    fence?.token ?? null,
    fence?.leaseMs ?? 0,
  ]);
  const dates = ['last_attempt_at', 'next_attempt_at', 'delivered_at', 'finished_at', 'created_at', 'updated_at', 'held_since', 'held_at', 'lease_until', 'attempt_lease_until'];
  return rows.map((row) => {
    const d = row.delivery as Record<string, unknown>;
    for (const k of dates) if (typeof d[k] === 'string') d[k] = new Date(d[k] as string);
    if (row.claimed) d.workflow_id = workflowId; // the row was read before the claim
    if (row.fenced) d.attempt_token = fence!.token;
    const { rate_limit_per_second, max_in_flight, throttled_until, throttle_streak, ...rest } = row;
    const limited = rate_limit_per_second !== null || max_in_flight !== null || throttled_until !== null || Number(throttle_streak) > 0;
    const limits: EndpointLimitsInfo | null = limited
      ? {
          rate_limit_per_second: rate_limit_per_second === null ? null : Number(rate_limit_per_second),
          max_in_flight: max_in_flight as number | null,
          throttled_until: throttled_until ? new Date(throttled_until as string) : null,
          throttle_streak: Number(throttle_streak),
        }
      : null;
    return { ...(rest as unknown as AttemptContext), delivery: d as unknown as DeliveryRow, health: healthFromJson(row.health) ?? null, limits };
  });
}

/** Why a delivery may or may not be sent now: its ownership and its endpoint's and account's state. */
export interface SendCheck {
  id: string;
  /** Still pending in the given series and owned by the asking workflow. */
  owned: boolean;
  /** The asking execution still holds the delivery's attempt fence, unexpired (true when it gave no token). */
  fenced: boolean;
  status: DeliveryStatus;
  endpoint_enabled: boolean;
  endpoint_deleted: boolean;
  plan: string;
  payload_purged: boolean;
}

const CHECK_BEFORE_SEND_SQL = statementText(
  () =>
    `${GENERIC_PLAN}select d.id, d.status, (d.status = 'pending' and d.series = t.series and d.workflow_id = $3::text) as owned,
            ($4::text is null or (d.attempt_token = $4::text and d.attempt_lease_until > now())) as fenced,
            ep.enabled as endpoint_enabled, (ep.deleted_at is not null) as endpoint_deleted, a.plan,
            (ev.purged_at is not null) as payload_purged
     from unnest($1::text[], $2::int[]) as t(id, series) join deliveries d on d.id = t.id and d.id = any($1::text[])
     join endpoints ep on ep.id = d.endpoint_id join accounts a on a.id = d.account_id join events ev on ev.id = d.event_id`,
);

/**
 * The check right before a wave of requests that the claim statement did not cover (they waited
 * for a free slot): in one read, whether each delivery is still pending and owned by `workflowId`,
 * and whether its endpoint and account still allow sending.
 */
export async function checkBeforeSend(db: Queryable, targets: { id: string; series: number }[], workflowId: string, fenceToken?: string): Promise<Map<string, SendCheck>> {
  if (targets.length === 0) return new Map();
  const rows = await db.query<SendCheck>(CHECK_BEFORE_SEND_SQL(), [targets.map((t) => t.id), targets.map((t) => t.series), workflowId, fenceToken ?? null]);
  return new Map(rows.map((r) => [r.id, r]));
}

const HAND_OVER_SQL = statementText(
  () =>
    `${GENERIC_PLAN}update deliveries d set workflow_id = case when d.workflow_id like 'drain-%' then d.workflow_id else t.workflow_id end
     from unnest($1::text[], $2::int[], $3::text[]) as t(id, series, workflow_id)
     where d.id = any($1::text[]) and d.id = t.id and d.series = t.series and d.status = 'pending'
       and (d.workflow_id is null or d.workflow_id = $4::text or d.workflow_id = t.workflow_id
            or d.workflow_id like 'drain-%') -- a recovery drain sending it now hands it to this workflow afterwards: start it
     returning d.id`,
);

/**
 * A first-attempt batch hands its deliveries (pending, same series, owned by it or not claimed at
 * all, e.g. when the database failed before its claim) to their own retry workflows; returns the
 * ids now owned by their retry workflow (handed over now or before). Only a delivery another
 * workflow owns is left to that workflow.
 */
export async function handOver(db: Queryable, batchId: string, targets: { id: string; series: number; workflowId: string }[]): Promise<string[]> {
  const rows = await db.query<{ id: string }>(HAND_OVER_SQL(), [targets.map((t) => t.id), targets.map((t) => t.series), targets.map((t) => t.workflowId), batchId]);
  return rows.map((r) => r.id);
}

/**
 * Deliveries an attempt record handed to their retry workflow but that finished before the
 * workflow was started (cancelled by the API in between): the batch that made their attempts
 * stays their owner, so their workflow link opens a workflow that exists.
 */
export async function keepWithBatch(db: Queryable, batchId: string, targets: { id: string; workflowId: string }[]): Promise<void> {
  if (targets.length === 0) return;
  await db.query(
    `update deliveries d set workflow_id = $3::text
     from unnest($1::text[], $2::text[]) as t(id, workflow_id)
     where d.id = any($1::text[]) and d.id = t.id and d.workflow_id = t.workflow_id and d.status <> 'pending'`,
    [targets.map((t) => t.id), targets.map((t) => t.workflowId), batchId],
  );
}

export interface AttemptRecord {
  deliveryId: string;
  series: number;
  startedAt: Date;
  durationMs: number;
  statusCode?: number;
  error?: string;
  responseBody?: string;
  /** The request's headers, custom values already redacted (src/domain/attemptHeaders.ts recordedRequestHeaders). */
  requestHeaders?: Record<string, string>;
  /** The kept subset of the response's headers (capturedResponseHeaders); absent without an answer. */
  responseHeaders?: Record<string, string>;
  /** Null when no attempt follows. */
  nextAttemptAt?: Date;
  delivered?: boolean;
  /** Hands the (still pending) delivery to this workflow, its own retry workflow, for the attempts that follow. */
  handOverTo?: string;
  /** The attempt fence the attempt was made under: released (the next attempt need not wait for its lease). */
  fence?: string;
  /** Outcome class (src/metrics.ts statusClass: 2xx, 4xx, timeout, network, refused…) for the stats rollup; derived from statusCode when absent. */
  outcome?: string;
}

/**
 * The recorded attempts (`upd`) added to their endpoints' per-minute rollup (src/db/endpointStats.ts):
 * one row per endpoint and minute, counts by outcome, a histogram of response times (attempts
 * that got an answer) and the latest error. Rows are upserted in key order, so two statements
 * that touch the same rows take their locks in the same order.
 */
const STATS_ROLLUP = `agg as (
       select endpoint_id, to_timestamp(floor(extract(epoch from started_at) / 60) * 60) as minute,
         count(*)::int as attempts, count(*) filter (where delivered)::int as succeeded,
         count(*) filter (where not delivered and outcome = '3xx')::int as f3, count(*) filter (where not delivered and outcome = '4xx')::int as f4,
         count(*) filter (where not delivered and outcome = '5xx')::int as f5, count(*) filter (where not delivered and outcome = 'timeout')::int as ft,
         count(*) filter (where not delivered and outcome not in ('3xx', '4xx', '5xx', 'timeout', 'refused'))::int as fn,
         count(*) filter (where not delivered and outcome = 'refused')::int as fr,
         array_agg(width_bucket(duration_ms, $13::int[])) filter (where status_code is not null) as lb,
         (array_agg(left(error, 500) order by started_at desc) filter (where not delivered))[1] as last_error,
         max(started_at) filter (where not delivered) as last_error_at
       from upd group by 1, 2
     ), rollup as (
       insert into endpoint_attempt_stats as s (endpoint_id, minute, attempts, succeeded, failed_3xx, failed_4xx, failed_5xx, failed_timeout, failed_network, failed_refused, latency, last_error, last_error_at)
       select endpoint_id, minute, attempts, succeeded, f3, f4, f5, ft, fn, fr,
         (select array_agg((select count(*) from unnest(agg.lb) x where x = i)::int order by i) from generate_series(1, cardinality($13::int[])) i),
         last_error, last_error_at
       from agg order by endpoint_id, minute
       on conflict (endpoint_id, minute) do update set attempts = s.attempts + excluded.attempts, succeeded = s.succeeded + excluded.succeeded,
         failed_3xx = s.failed_3xx + excluded.failed_3xx, failed_4xx = s.failed_4xx + excluded.failed_4xx, failed_5xx = s.failed_5xx + excluded.failed_5xx,
         failed_timeout = s.failed_timeout + excluded.failed_timeout, failed_network = s.failed_network + excluded.failed_network, failed_refused = s.failed_refused + excluded.failed_refused,
         latency = (select array_agg(coalesce(x, 0) + coalesce(y, 0) order by i) from unnest(s.latency, excluded.latency) with ordinality as u(x, y, i)),
         last_error = case when excluded.last_error_at >= s.last_error_at or s.last_error_at is null then coalesce(excluded.last_error, s.last_error) else s.last_error end,
         last_error_at = greatest(s.last_error_at, excluded.last_error_at)
       returning 1
     )`;

const RECORD_ATTEMPTS_SQL = statementText(
  () =>
    `${GENERIC_PLAN}with t as (
       select * from unnest($1::text[], $2::int[], $3::timestamptz[], $4::int[], $5::int[], $6::text[], $7::text[], $8::timestamptz[], $9::bool[], $10::text[], $11::text[], $12::text[],
                            $14::text[], $15::text[])
         as t(delivery_id, series, started_at, duration_ms, status_code, error, response_body, next_attempt_at, delivered, hand_over_to, fence, outcome,
              request_headers, response_headers)
     ), upd as (
       update deliveries d set attempt_count = d.attempt_count + 1, last_attempt_at = t.started_at, next_attempt_at = t.next_attempt_at, updated_at = now(),
         attempt_token = case when d.attempt_token = t.fence then null else d.attempt_token end,
         attempt_lease_until = case when d.attempt_token = t.fence then null else d.attempt_lease_until end,
         workflow_id = case when t.hand_over_to is not null and d.status = 'pending' then t.hand_over_to else d.workflow_id end,
         -- A 2xx is what happened, also for an attempt that was in flight while the endpoint was
         -- deleted or disabled (the delivery was cancelled meanwhile): delivered, no reason left.
         status = case when t.delivered and d.status <> 'delivered' then 'delivered' else d.status end,
         -- delivered: nothing left to start (an inline first attempt's only record of its dispatch)
         dispatched_series = case when t.delivered then greatest(d.dispatched_series, t.series) else d.dispatched_series end,
         final_reason = case when t.delivered and d.status <> 'delivered' then null else d.final_reason end,
         delivered_at = case when t.delivered and d.status <> 'delivered' then t.started_at + (t.duration_ms * interval '1 millisecond') else d.delivered_at end,
         finished_at = case when t.delivered and d.status <> 'delivered' then t.started_at + (t.duration_ms * interval '1 millisecond') else d.finished_at end
       from t where d.id = any($1::text[]) and d.id = t.delivery_id -- any(): the primary key index, not a scan
         and d.series = t.series -- an attempt of an older series never touches a resent one
       returning d.id, d.attempt_count as attempt, d.endpoint_id, t.series, t.started_at, t.duration_ms, t.status_code, t.error, t.response_body, t.delivered,
         t.request_headers, t.response_headers,
         coalesce(t.outcome, case when t.status_code is null then 'network' else (t.status_code / 100)::text || 'xx' end) as outcome
     ), ins as (
       insert into delivery_attempts (delivery_id, attempt, series, started_at, duration_ms, status_code, error, response_body, request_headers, response_headers)
       select id, attempt, series, started_at, duration_ms, status_code, error, response_body, request_headers::jsonb, response_headers::jsonb from upd returning 1
     ), healthy as (
       -- any 2xx closes the endpoint's circuit and ends its failure streak (src/db/endpointHealth.ts);
       -- written only when that changes something or the last success is a minute old: hot rows
       update endpoint_health h set prev_state = h.state, state = 'healthy',
         since = case when h.state = 'healthy' then h.since else ok.at end, consecutive_failures = 0, failing_since = null,
         probe_attempt = 0, next_probe_at = null, probe_owner = null, probe_lease_until = null, last_success_at = ok.at, updated_at = now()
       from (select endpoint_id, max(started_at) as at from upd where delivered group by endpoint_id) ok
       where h.endpoint_id = ok.endpoint_id
         and (h.state <> 'healthy' or h.consecutive_failures > 0 or h.failing_since is not null
              or h.last_success_at is null or h.last_success_at < ok.at - interval '1 minute')
       returning h.endpoint_id, h.prev_state, ok.at
     ), ops_src as (
       -- a circuit that was open closed: endpoint.recovered in this statement (src/db/operational.ts);
       -- the subquery reads the health row as it was before this statement
       select e.account_id, 'endpoint.recovered'::text as event_type,
              json_build_object('accountId', e.account_id, 'endpointId', e.id, 'url', e.url,
                                'failingSince', (select ${isoSql('o.failing_since')} from endpoint_health o where o.endpoint_id = r.endpoint_id),
                                'recoveredAt', ${isoSql('r.at')}) as data
       from healthy r join endpoints e on e.id = r.endpoint_id
       where r.prev_state in ('open', 'probing')
     ), ${emitOperational('ops_src')}, ${STATS_ROLLUP}
     select id, attempt from upd`,
);

/**
 * Records attempts and their deliveries' counters in one statement, numbered per delivery; a
 * successful attempt also finishes its delivery (saving the workflow a second activity), even one
 * cancelled or ended while the request was in flight, and ends the endpoint's failure streak.
 * Returns each attempt's number, in input order (0 for an attempt of a series that was resent
 * meanwhile: the resent delivery is left alone).
 */
export async function recordAttempts(db: Queryable, attempts: AttemptRecord[]): Promise<number[]> {
  if (attempts.length === 0) return [];
  const col = <T>(f: (a: AttemptRecord) => T) => attempts.map(f);
  const rows = await db.query<{ id: string; attempt: number }>(RECORD_ATTEMPTS_SQL(), [
    col((a) => a.deliveryId),
    col((a) => a.series),
    col((a) => a.startedAt),
    col((a) => a.durationMs),
    col((a) => a.statusCode ?? null),
    col((a) => a.error ?? null),
    col((a) => a.responseBody ?? null),
    col((a) => a.nextAttemptAt ?? null),
    col((a) => a.delivered === true),
    col((a) => a.handOverTo ?? null),
    col((a) => a.fence ?? null),
    col((a) => a.outcome ?? null),
    LATENCY_BOUNDS_MS,
    col((a) => (a.requestHeaders ? JSON.stringify(a.requestHeaders) : null)),
    col((a) => (a.responseHeaders ? JSON.stringify(a.responseHeaders) : null)),
  ]);
  const byId = new Map(rows.map((r) => [r.id, r.attempt]));
  return attempts.map((a) => byId.get(a.deliveryId) ?? 0);
}

const RELEASE_FENCES_SQL = statementText(
  () => `${GENERIC_PLAN}update deliveries set attempt_token = null, attempt_lease_until = null where id = any($1::text[]) and attempt_token = $2`,
);

/** Releases the attempt fences an activity execution took but made no (recorded) attempt under. */
export async function releaseFences(db: Queryable, ids: string[], token: string): Promise<void> {
  if (ids.length === 0) return;
  await db.query(RELEASE_FENCES_SQL(), [ids, token]);
}

/**
 * Moves a pending delivery of the given series to its final status. Only from `pending`, so a
 * late or repeated outcome never overwrites an earlier decision (e.g. cancelled by the API).
 */
export async function finishDelivery(
  db: Queryable,
  a: { deliveryId: string; series: number; status: Exclude<DeliveryStatus, 'pending'>; reason?: string; at: Date },
): Promise<boolean> {
  // An undeliverable end emits delivery.exhausted in the same statement (src/db/operational.ts);
  // the other ends skip the emitting CTEs (they double this statement's cost).
  if (a.status !== 'undeliverable') {
    const rows = await db.query(
      `update deliveries set status = $3, final_reason = $4, finished_at = $5, next_attempt_at = null,
         delivered_at = case when $3 = 'delivered' then $5 else delivered_at end, updated_at = now(), dispatched_series = greatest(dispatched_series, series)
       where id = $1 and series = $2 and status = 'pending' returning id`,
      [a.deliveryId, a.series, a.status, a.reason ?? null, a.at],
    );
    return rows.length > 0;
  }
  const rows = await db.query(
    `with d as (
       update deliveries set status = $3, final_reason = $4, finished_at = $5, next_attempt_at = null,
         delivered_at = case when $3 = 'delivered' then $5 else delivered_at end, updated_at = now(), dispatched_series = greatest(dispatched_series, series)
       where id = $1 and series = $2 and status = 'pending' returning *
     ), ops_src as (
       select d.account_id, 'delivery.exhausted'::text as event_type,
              json_build_object('accountId', d.account_id, 'endpointId', d.endpoint_id, 'deliveryId', d.id, 'eventId', d.event_id, 'eventType', d.event_type,
                                'attemptCount', d.attempt_count, 'reason', d.final_reason, 'finishedAt', ${isoSql('d.finished_at')}) as data
       from d where d.status = 'undeliverable'
     ), ${emitOperational('ops_src')}
     select id from d`,
    [a.deliveryId, a.series, a.status, a.reason ?? null, a.at],
  );
  return rows.length > 0;
}

/** Cancels every pending delivery of an endpoint (deleted or disabled); returns their ids and series. */
export async function cancelPendingOfEndpoint(db: Queryable, endpointId: string, reason: string): Promise<{ id: string; series: number }[]> {
  return db.query(
    `update deliveries set status = 'cancelled', final_reason = $2, finished_at = now(), next_attempt_at = null, updated_at = now()
     where endpoint_id = $1 and status = 'pending' returning id, series`,
    [endpointId, reason],
  );
}

/** Starts a new attempt series for a finished delivery; undefined if it is still pending. */
export async function startNewSeries(db: Queryable, accountId: string, id: string): Promise<DeliveryRow | undefined> {
  const [row] = await db.query<DeliveryRow>(
    `update deliveries set series = series + 1, status = 'pending', final_reason = null, finished_at = null, next_attempt_at = now(), workflow_id = null, updated_at = now(),
       held_reason = null, held_detail = null, held_since = null, held_at = null, held_wakeups = 0
     where id = $1 and account_id = $2 and status <> 'pending'
       and not exists (select 1 from events e where e.id = deliveries.event_id and e.purged_at is not null) returning *`,
    [id, accountId],
  );
  return row;
}
