import type { Queryable } from './database';

/**
 * Per-endpoint send limits shared by every worker process through the database:
 * - a rate limit as a GCRA (generic cell rate algorithm): `next_free_at` is when the endpoint's
 *   next send slot is free; a reservation takes consecutive slots 1/R apart, so no second ever
 *   holds more than R (+1) starts, whoever sends;
 * - a concurrency limit as leased rows (`endpoint_slots`), one per allowed request in flight; a
 *   lease outlives its holder by at most the attempt timeout, so a crashed worker frees its slots;
 * - a receiver's 429 (or 503 with Retry-After): `throttled_until`, which every sender honours.
 * Times are the callers' clocks (the activities' `now`), as for the circuit breaker's probe lease.
 */

/** What the senders read with each attempt context (null when the endpoint has no limits row and no limits). */
export interface EndpointLimitsInfo {
  rate_limit_per_second: number | null;
  max_in_flight: number | null;
  throttled_until: Date | null;
  throttle_streak: number;
}

/** Keeps the limiter's rows in line with the endpoint's settings (after create or PATCH). */
export async function syncEndpointLimits(db: Queryable, endpointId: string, limits: { rateLimitPerSecond: number | null; maxInFlight: number | null }): Promise<void> {
  if (limits.rateLimitPerSecond !== null) await db.query(`insert into endpoint_limits (endpoint_id) values ($1) on conflict (endpoint_id) do nothing`, [endpointId]);
  const max = limits.maxInFlight ?? 0;
  await db.query(`delete from endpoint_slots where endpoint_id = $1 and slot >= $2`, [endpointId, max]);
  if (max > 0) await db.query(`insert into endpoint_slots (endpoint_id, slot) select $1, g from generate_series(0, $2::int - 1) g on conflict do nothing`, [endpointId, max]);
}

/**
 * Slots are paced at 90 % of the endpoint's rate: a request that leaves a little late (a busy event
 * loop, a descheduled worker on a loaded machine) then never pushes a second at the receiver over
 * the limit (measured with two workers: 95 % still let 22 requests into one second at 20/s).
 */
export const PACING = 0.9;
/**
 * When one process is the only sender (the embedded default: PGlite lives in it), its own pacing
 * (src/activities/endpointLimiter.ts `pace`) keeps every request at least one slot after the
 * previous one, however late a timer fires: no other process's requests can fall in between, so
 * the slots need only a small margin (measured: 88/s at a limit of 100/s with 90 %).
 */
export const SOLE_PROCESS_PACING = 0.98;

export interface Reservation {
  /** Start time of the first granted slot (the caller's clock); the others follow `intervalMs` apart. */
  firstAtMs: number;
  intervalMs: number;
  granted: number;
}

/**
 * Reserves up to `want` consecutive send slots of the endpoint's rate limit that start within
 * `maxWaitMs` from `nowMs` (never before a 429 throttle ends). One statement; the row is locked
 * while it runs, so concurrent reservations get disjoint slots. Undefined: no rate limit.
 */
export async function reserveSendSlots(db: Queryable, endpointId: string, want: number, nowMs: number, maxWaitMs: number, pacing = PACING): Promise<Reservation | undefined> {
  // Every value derives from the locked row in SET (re-read after a concurrent update), not from a subquery.
  const start = `greatest(l.next_free_at, $2::timestamptz, coalesce(l.throttled_until, '-infinity'::timestamptz))`;
  const rate = `(e.rate_limit_per_second * $5::double precision)`;
  const grant = `greatest(0, least($3::int, floor(extract(epoch from ($2::timestamptz + $4::double precision * interval '1 millisecond' - ${start}))::double precision * ${rate})::int + 1))`;
  const [row] = await db.query<{ last_start: Date; last_grant: number; rate: number }>(
    `update endpoint_limits l set last_start = ${start}, last_grant = ${grant},
       next_free_at = ${start} + ${grant} * (interval '1 second' / ${rate})
     from endpoints e where l.endpoint_id = $1 and e.id = l.endpoint_id and e.rate_limit_per_second is not null
     returning l.last_start, l.last_grant, ${rate} as rate`,
    [endpointId, new Date(nowMs), want, maxWaitMs, pacing],
  );
  if (!row) return undefined;
  return { firstAtMs: new Date(row.last_start).getTime(), intervalMs: 1000 / Number(row.rate), granted: row.last_grant };
}

/** Leases up to `want` free concurrency slots of the endpoint for `holder`; returns their numbers. */
export async function takeInFlightSlots(db: Queryable, endpointId: string, holder: string, want: number, nowMs: number, leaseMs: number): Promise<number[]> {
  if (want <= 0) return [];
  const rows = await db.query<{ slot: number }>(
    `update endpoint_slots s set holder = $2, lease_until = $3::timestamptz + $4::double precision * interval '1 millisecond'
     from (select slot from endpoint_slots where endpoint_id = $1 and (holder is null or lease_until < $3::timestamptz)
           order by slot limit $5 for update skip locked) f
     where s.endpoint_id = $1 and s.slot = f.slot returning s.slot`,
    [endpointId, holder, new Date(nowMs), leaseMs, want],
  );
  return rows.map((r) => r.slot);
}

export async function releaseInFlightSlots(db: Queryable, endpointId: string, holder: string, slots: number[]): Promise<void> {
  if (slots.length === 0) return;
  await db.query(`update endpoint_slots set holder = null, lease_until = null where endpoint_id = $1 and slot = any($2::int[]) and holder = $3`, [endpointId, slots, holder]);
}

/** When the endpoint's free slots may be free again: the earliest lease end of the taken ones. */
export async function nextSlotFreeAt(db: Queryable, endpointId: string): Promise<Date | undefined> {
  const [row] = await db.query<{ at: Date | null }>(`select min(lease_until) as at from endpoint_slots where endpoint_id = $1 and holder is not null`, [endpointId]);
  return row?.at ? new Date(row.at) : undefined;
}

/**
 * A receiver answered 429 (or 503 with Retry-After): nothing more goes to it until its Retry-After
 * has passed, or, without one, for 1 s doubling with each 429 in a row (at most 64 s). Returns the end.
 */
export async function throttleEndpoint(db: Queryable, endpointId: string, atMs: number, retryAfterMs: number | undefined): Promise<Date> {
  const [row] = await db.query<{ throttled_until: Date }>(
    `insert into endpoint_limits as l (endpoint_id, throttled_until, throttle_streak)
     values ($1, $2::timestamptz + greatest($3::double precision * interval '1 millisecond', interval '1 second'), 1)
     on conflict (endpoint_id) do update set
       throttled_until = greatest(l.throttled_until, $2::timestamptz + greatest($3::double precision * interval '1 millisecond', interval '1 second' * power(2, least(l.throttle_streak, 6)))),
       throttle_streak = l.throttle_streak + 1
     returning l.throttled_until`,
    [endpointId, new Date(atMs), retryAfterMs ?? 0],
  );
  return new Date(row.throttled_until);
}

/**
 * The customer says the receiver is fixed (retry now): its 429 / Retry-After pause ends now, and
 * the next 429 starts from a 1 s pause again.
 */
export async function endThrottle(db: Queryable, endpointId: string): Promise<void> {
  await db.query(`update endpoint_limits set throttled_until = null, throttle_streak = 0 where endpoint_id = $1 and (throttled_until is not null or throttle_streak > 0)`, [
    endpointId,
  ]);
}

/** A 2xx after 429s: the next 429 starts from a 1 s pause again. */
export async function clearThrottleStreak(db: Queryable, endpointIds: string[]): Promise<void> {
  if (endpointIds.length === 0) return;
  await db.query(`update endpoint_limits set throttle_streak = 0 where endpoint_id = any($1::text[]) and throttle_streak > 0`, [endpointIds]);
}

/** The endpoint's rate limit (null: none). */
export async function endpointRateLimit(db: Queryable, endpointId: string): Promise<number | null> {
  const [row] = await db.query<{ rate: number | null }>(`select rate_limit_per_second as rate from endpoints where id = $1`, [endpointId]);
  return row?.rate == null ? null : Number(row.rate);
}
