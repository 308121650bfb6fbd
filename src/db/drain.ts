import type { Queryable } from './database';

/**
 * The recovery drain's claims (workflow `drain-<endpointId>`), through the same ownership column
 * as every sender (deliveries.workflow_id): it takes only deliveries parked with their own retry
 * workflow (`delivery-…`) whose next wake-up is more than 5 s away (so never one whose retry is
 * in flight), oldest first, with a lease; each is handed back to its retry workflow by the
 * attempt record (delivered or not) or by handBackFromDrain.
 */
export async function claimDrainPage(
  db: Queryable,
  q: {
    endpointId: string;
    owner: string;
    nowMs: number;
    leaseMs: number;
    limit: number;
    deliveryIds?: string[];
    after?: { createdAt: string; id: string };
    heldOnly?: boolean;
    /** Only deliveries not attempted since then (a drain's sweep). */
    attemptedBeforeMs?: number;
  },
): Promise<{ id: string; series: number }[]> {
  return db.query<{ id: string; series: number }>(
    `with page as (
       select d.id from deliveries d
       where d.endpoint_id = $1 and d.status = 'pending'
         and (d.workflow_id like 'delivery-%' or d.workflow_id = $2 or (d.workflow_id like 'drain-%' and d.lease_until < $3))
         and (d.lease_until is null or d.lease_until < $3 or d.workflow_id = $2)
         -- not waking within 5 s; no wake-up time at all: handed over without one; or overdue by more
         -- than 5 s (its wake-up waits in a busy worker's queue). The attempt fence keeps a retry
         -- that is in flight after all from being sent twice.
         and (d.workflow_id like 'drain-%' or d.next_attempt_at is null or d.next_attempt_at > $3::timestamptz + interval '5 seconds'
              or d.next_attempt_at < $3::timestamptz - interval '5 seconds')
         and ($4::text[] is null or d.id = any($4::text[]))
         and ($5::timestamptz is null or (d.created_at, d.id) > ($5::timestamptz, $6::text))
         and (not $9::boolean or (d.held_reason in ('throttled', 'rate_limited', 'max_in_flight') and (d.last_attempt_at is null or d.held_at > d.last_attempt_at)))
         and ($10::timestamptz is null or d.last_attempt_at is null or d.last_attempt_at < $10::timestamptz)
       order by d.created_at, d.id limit $7 for update skip locked
     )
     update deliveries d set workflow_id = $2, lease_until = $3::timestamptz + $8 * interval '1 millisecond'
     from page where d.id = page.id returning d.id, d.series`,
    [
      q.endpointId,
      q.owner,
      new Date(q.nowMs),
      q.deliveryIds ?? null,
      q.after ? new Date(q.after.createdAt) : null,
      q.after?.id ?? '',
      q.limit,
      q.leaseMs,
      q.heldOnly === true,
      q.attemptedBeforeMs === undefined ? null : new Date(q.attemptedBeforeMs),
    ],
  );
}

/** Gives deliveries the drain claimed but did not send back to their retry workflows. */
export async function handBackFromDrain(db: Queryable, owner: string, targets: { id: string; workflowId: string }[]): Promise<void> {
  if (targets.length === 0) return;
  await db.query(
    `update deliveries d set workflow_id = t.workflow_id, lease_until = null
     from unnest($1::text[], $2::text[]) as t(id, workflow_id)
     where d.id = any($1::text[]) and d.id = t.id and d.workflow_id = $3`,
    [targets.map((t) => t.id), targets.map((t) => t.workflowId), owner],
  );
}

/** A retry workflow takes its delivery back from a drain whose lease expired (the drain died). */
export async function reclaimFromDrain(db: Queryable, q: { id: string; series: number; owner: string; nowMs: number }): Promise<boolean> {
  const rows = await db.query(
    `update deliveries set workflow_id = $3, lease_until = null
     where id = $1 and series = $2 and status = 'pending' and workflow_id like 'drain-%' and lease_until < $4 returning id`,
    [q.id, q.series, q.owner, new Date(q.nowMs)],
  );
  return rows.length > 0;
}

/** A forced probe found nothing to send: the circuit stays open as it was. */
export async function releaseProbeLease(db: Queryable, endpointId: string, owner: string): Promise<void> {
  await db.query(
    `update endpoint_health set state = 'open', prev_state = state, probe_owner = null, probe_lease_until = null, updated_at = now() where endpoint_id = $1 and probe_owner = $2 and state = 'probing'`,
    [endpointId, owner],
  );
}

/** Pending deliveries of an endpoint, oldest first (for the retry route's answer). */
export async function pendingOfEndpoint(db: Queryable, endpointId: string, limit: number): Promise<string[]> {
  const rows = await db.query<{ id: string }>(`select id from deliveries where endpoint_id = $1 and status = 'pending' order by created_at, id limit $2`, [endpointId, limit]);
  return rows.map((r) => r.id);
}

/** Whether the endpoint has any pending delivery (the prober stops when it has none). */
export async function hasPending(db: Queryable, endpointId: string): Promise<boolean> {
  const rows = await db.query(`select 1 from deliveries where endpoint_id = $1 and status = 'pending' limit 1`, [endpointId]);
  return rows.length > 0;
}

/** A retry workflow's wake-up that found the drain sending its delivery: no request, counted like a held one. */
export async function countHeldWakeup(db: Queryable, id: string, series: number): Promise<void> {
  await db.query(`update deliveries set held_wakeups = held_wakeups + 1 where id = $1 and series = $2 and status = 'pending'`, [id, series]);
}
