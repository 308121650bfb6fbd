import type { Queryable } from './database';
import { GENERIC_PLAN } from './sqlMarkers';
import { cancelPendingOfEndpoint } from './deliveries';
import { disableEndpoint } from './endpoints';
import { emitOperational, isoSql } from './operational';
import { statementText } from './statementText';

export type HealthState = 'healthy' | 'failing' | 'open' | 'probing';

/** One endpoint's health record (table endpoint_health; no row reads as healthy). */
export interface EndpointHealthRow {
  endpoint_id: string;
  state: HealthState;
  prev_state: HealthState | null;
  since: Date;
  consecutive_failures: number;
  last_error: string | null;
  last_failure_at: Date | null;
  last_success_at: Date | null;
  /** Start of the current failure streak: the auto-disable clock. */
  failing_since: Date | null;
  probe_attempt: number;
  next_probe_at: Date | null;
  probe_owner: string | null;
  probe_lease_until: Date | null;
  updated_at: Date;
}

const DATE_COLUMNS = ['since', 'last_failure_at', 'last_success_at', 'failing_since', 'next_probe_at', 'probe_lease_until', 'updated_at'] as const;

/** A health row as read through row_to_json (dates as strings) made typed. */
export function healthFromJson(raw: unknown): EndpointHealthRow | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = { ...(raw as Record<string, unknown>) };
  for (const k of DATE_COLUMNS) if (typeof r[k] === 'string') r[k] = new Date(r[k] as string);
  return r as unknown as EndpointHealthRow;
}

export async function healthOf(db: Queryable, endpointIds: string[]): Promise<Map<string, EndpointHealthRow>> {
  if (endpointIds.length === 0) return new Map();
  const rows = await db.query<EndpointHealthRow>('select * from endpoint_health where endpoint_id = any($1::text[])', [endpointIds]);
  return new Map(rows.map((r) => [r.endpoint_id, r]));
}

/** Failed attempts of one endpoint, as one input row of recordEndpointFailures. */
export interface EndpointFailures {
  endpointId: string;
  /** Latest failed attempt's start. */
  at: Date;
  /** Failures that count toward the streak (a 429 does not: the endpoint is alive). */
  count: number;
  error: string;
}

export interface FailureTransition {
  endpoint_id: string;
  prev_state: HealthState | null;
  state: HealthState;
  consecutive_failures: number;
  failing_since: Date;
  next_probe_at: Date | null;
}

// The state after adding excluded's failures to row h: open and probing only move on a probe's own
// result (finishProbe, or a success); otherwise the streak opens the circuit at `openAfter` ($5).
const STREAK = 'h.consecutive_failures + excluded.consecutive_failures';
const NEXT_STATE = `case when h.state in ('open', 'probing') then h.state when ${STREAK} >= $5 then 'open' when ${STREAK} > 0 then 'failing' else h.state end`;
const OPENS = `(h.state in ('healthy', 'failing') and ${STREAK} >= $5)`;

const RECORD_ENDPOINT_FAILURES_SQL = statementText(
  () =>
    `with rec as (
     insert into endpoint_health as h (endpoint_id, state, since, consecutive_failures, last_error, last_failure_at, failing_since, probe_attempt, next_probe_at)
     select t.ep, case when t.n >= $5 then 'open' when t.n > 0 then 'failing' else 'healthy' end, t.at, t.n, t.err, t.at, t.at,
            case when t.n >= $5 then 1 else 0 end, case when t.n >= $5 then t.at + $6 * interval '1 millisecond' end
     from unnest($1::text[], $2::timestamptz[], $3::int[], $4::text[]) as t(ep, at, n, err)
     on conflict (endpoint_id) do update set
       prev_state = h.state,
       state = ${NEXT_STATE},
       since = case when ${NEXT_STATE} = h.state then h.since else excluded.last_failure_at end,
       consecutive_failures = ${STREAK},
       last_error = excluded.last_error,
       last_failure_at = greatest(h.last_failure_at, excluded.last_failure_at),
       failing_since = coalesce(h.failing_since, excluded.failing_since),
       probe_attempt = case when ${OPENS} then 1 else h.probe_attempt end,
       next_probe_at = case when ${OPENS} then excluded.last_failure_at + $6 * interval '1 millisecond' else h.next_probe_at end,
       updated_at = now()
     returning endpoint_id, prev_state, state, consecutive_failures, failing_since, next_probe_at, last_error
     ), ops_src as (
       select e.account_id, 'endpoint.failing'::text as event_type,
              json_build_object('accountId', e.account_id, 'endpointId', e.id, 'url', e.url, 'consecutiveFailures', r.consecutive_failures,
                                'failingSince', ${isoSql('r.failing_since')}, 'lastError', r.last_error) as data
       from rec r join endpoints e on e.id = r.endpoint_id
       where r.state = 'open' and (r.prev_state is null or r.prev_state in ('healthy', 'failing'))
     ), ${emitOperational('ops_src')}
     select endpoint_id, prev_state, state, consecutive_failures, failing_since, next_probe_at from rec`,
);

/**
 * Records failed attempts (one row per endpoint) and moves each endpoint's state machine, in one
 * statement: healthy → failing → open after `openAfter` consecutive failures; the first probe is
 * then due `firstProbeDelayMs` after the failure that opened it. Returns each endpoint's
 * transition (prev_state null: the row was created). Concurrent callers serialise on the row,
 * so exactly one of them sees the transition to open.
 */
export async function recordEndpointFailures(db: Queryable, failures: EndpointFailures[], openAfter: number, firstProbeDelayMs: number): Promise<FailureTransition[]> {
  if (failures.length === 0) return [];
  // endpoint.failing is emitted by the same statement when the streak opens the circuit (src/db/operational.ts).
  return db.query<FailureTransition>(RECORD_ENDPOINT_FAILURES_SQL(), [
    failures.map((f) => f.endpointId),
    failures.map((f) => f.at),
    failures.map((f) => f.count),
    failures.map((f) => f.error),
    openAfter,
    firstProbeDelayMs,
  ]);
}

/** A fresh start (the endpoint was re-enabled): no row reads as healthy. */
export async function resetEndpointHealth(db: Queryable, endpointId: string): Promise<void> {
  await db.query('delete from endpoint_health where endpoint_id = $1', [endpointId]);
}

/**
 * Auto-disable, read from the health record: once the failure streak that began at
 * `failingSince` has lasted `disableAfterMs` at `at`, disables the endpoint and cancels its
 * pending deliveries. Returns true when this call disabled it.
 */
export async function autoDisableIfDue(db: Queryable, endpointId: string, failingSince: Date | null, at: Date, disableAfterMs: number): Promise<boolean> {
  if (!failingSince || at.getTime() - new Date(failingSince).getTime() < disableAfterMs) return false;
  const reason = `auto-disabled: every attempt failed since ${new Date(failingSince).toISOString()}`;
  if (!(await disableEndpoint(db, endpointId, reason, at))) return false;
  await cancelPendingOfEndpoint(db, endpointId, 'endpoint auto-disabled after failing for too long');
  return true;
}

/**
 * Takes the endpoint's probe lease for `owner` (a workflow id) when the circuit is open and the
 * probe is due (or `forced`), and nobody else holds a live lease; the state becomes `probing`.
 * Returns the probe's number (1 = first probe after opening), or undefined when not taken.
 * Concurrent takers serialise on the row: exactly one wins.
 */
export async function takeProbeLease(db: Queryable, endpointId: string, owner: string, at: Date, leaseMs: number, forced = false): Promise<number | undefined> {
  const [row] = await db.query<{ probe_attempt: number }>(
    `update endpoint_health set prev_state = state, state = 'probing', probe_owner = $2,
       probe_lease_until = $3::timestamptz + $4 * interval '1 millisecond', updated_at = now()
     where endpoint_id = $1 and state in ('open', 'probing') and ($5 or next_probe_at is null or next_probe_at <= $3)
       and (probe_owner is null or probe_lease_until < $3 or probe_owner = $2)
     returning probe_attempt`,
    [endpointId, owner, at, leaseMs, forced],
  );
  return row?.probe_attempt;
}

/**
 * The probe failed: back to `open`, the next probe `nextDelayMs` after `at` (the caller computes it
 * from the probe's number), the streak and last error updated, the lease released. Only the
 * lease's owner moves it; returns the auto-disable clock, or undefined when `owner` no longer
 * held the lease.
 */
export async function finishProbe(
  db: Queryable,
  endpointId: string,
  owner: string,
  at: Date,
  error: string,
  nextDelayMs: number,
): Promise<{ failing_since: Date; next_probe_at: Date } | undefined> {
  const [row] = await db.query<{ failing_since: Date; next_probe_at: Date }>(
    `update endpoint_health set prev_state = state, state = 'open', probe_attempt = probe_attempt + 1,
       next_probe_at = $3::timestamptz + $5 * interval '1 millisecond', probe_owner = null, probe_lease_until = null,
       consecutive_failures = consecutive_failures + 1, last_error = $4, last_failure_at = $3,
       failing_since = coalesce(failing_since, $3), updated_at = now()
     where endpoint_id = $1 and probe_owner = $2 and state = 'probing'
     returning failing_since, next_probe_at`,
    [endpointId, owner, at, error, nextDelayMs],
  );
  return row;
}

/** A held wake-up of one delivery: no request, no attempt row. */
export interface HeldWakeup {
  deliveryId: string;
  series: number;
  reason: string;
  detail: string;
  /** When it wakes next. */
  until: Date;
  /** Hand the delivery to this workflow in the same write (a first-attempt batch to the retry workflow). */
  handOverTo?: string;
}

const MARK_HELD_SQL = statementText(
  () =>
    `${GENERIC_PLAN}update deliveries d set held_reason = t.reason, held_detail = t.detail,
       held_since = case when d.held_at is null or d.held_since is null or (d.last_attempt_at is not null and d.last_attempt_at > d.held_at) then $3 else d.held_since end,
       held_at = $3, held_wakeups = d.held_wakeups + 1, next_attempt_at = t.until,
       workflow_id = coalesce(t.hand_over_to, d.workflow_id), updated_at = now()
     from unnest($1::text[], $2::int[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]) as t(id, series, reason, detail, until, hand_over_to)
     where d.id = any($1::text[]) and d.id = t.id and d.series = t.series and d.status = 'pending' and d.workflow_id = $8
     returning d.id`,
);

/**
 * Records held wake-ups of deliveries that `owner` owns (one statement for a batch). held_since
 * starts again after a real attempt; next_attempt_at becomes the wake-up time.
 */
export async function markHeld(db: Queryable, owner: string, at: Date, held: HeldWakeup[]): Promise<string[]> {
  if (held.length === 0) return [];
  const rows = await db.query<{ id: string }>(MARK_HELD_SQL(), [
    held.map((h) => h.deliveryId),
    held.map((h) => h.series),
    at,
    held.map((h) => h.reason),
    held.map((h) => h.detail),
    held.map((h) => h.until),
    held.map((h) => h.handOverTo ?? null),
    owner,
  ]);
  return rows.map((r) => r.id);
}

/** Sets when the next probe of an open circuit is due (after it opened: anchored at its failure streak's start). */
export async function scheduleProbe(db: Queryable, endpointId: string, at: Date): Promise<void> {
  await db.query(`update endpoint_health set next_probe_at = $2, updated_at = now() where endpoint_id = $1 and state = 'open'`, [endpointId, at]);
}
