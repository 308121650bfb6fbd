import type { z } from 'zod';
import type { AccountRow } from '../db/accounts';
import type { ApiKeyRow } from '../db/apiKeys';
import type { AttemptRow, DeliveryRow } from '../db/deliveries';
import type { EndpointRow } from '../db/endpoints';
import type { EndpointHealthRow } from '../db/endpointHealth';
import type { HoldReason } from '../domain/endpointGate';
import type { AccountOut, ApiKeyOut, AttemptOut, DeliveryOut, EndpointOut } from './schemas';

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : undefined);

export function accountOut(a: AccountRow): z.infer<typeof AccountOut> {
  return { id: a.id, name: a.name, plan: a.plan, createdAt: iso(a.created_at)!, updatedAt: iso(a.updated_at)! };
}

/** An endpoint's health record as the API shows it; no record reads as healthy since its creation. */
export function healthOut(e: Pick<EndpointRow, 'created_at'>, h: EndpointHealthRow | undefined): z.infer<typeof EndpointOut>['health'] {
  if (!h) return { state: 'healthy', since: iso(e.created_at)!, consecutiveFailures: 0 };
  const circuit = h.state === 'open' || h.state === 'probing';
  return {
    state: h.state,
    since: iso(h.since)!,
    consecutiveFailures: h.consecutive_failures,
    lastError: h.state === 'healthy' ? undefined : (h.last_error ?? undefined),
    nextProbeAt: circuit ? iso(h.next_probe_at) : undefined,
  };
}

/** Never includes the secret: it has its own route. */
export function endpointOut(e: EndpointRow, health?: EndpointHealthRow): z.infer<typeof EndpointOut> {
  return {
    id: e.id,
    url: e.url,
    eventTypes: e.event_types,
    description: e.description,
    enabled: e.enabled,
    disabledReason: e.disabled_reason,
    disabledAt: iso(e.disabled_at) ?? null,
    createdAt: iso(e.created_at)!,
    updatedAt: iso(e.updated_at)!,
    rateLimitPerSecond: e.rate_limit_per_second === null || e.rate_limit_per_second === undefined ? null : Number(e.rate_limit_per_second),
    maxInFlight: e.max_in_flight ?? null,
    headers: e.headers ?? {},
    health: healthOut(e, health),
  };
}

/**
 * The workflow an operator opens for a delivery: one that exists. Its owner (the first-attempt
 * batch, `delivery-<id>` once it retries, the endpoint's drain while that sends it), except while
 * its batch has handed it over and the retry workflow's start is not confirmed yet (the batch,
 * which starts it, is shown); before any workflow claimed it, the one whose start was confirmed.
 * Undefined while none was started (the batch window, or Temporal unreachable), and for a delivery
 * whose first attempt was sent straight from the process (DISPATCH_INLINE) and needed no retry.
 */
export function operatorWorkflowId(d: Pick<DeliveryRow, 'workflow_id' | 'series' | 'dispatched_series' | 'dispatched_workflow_id'>): string | undefined {
  const started = d.dispatched_series >= d.series ? (d.dispatched_workflow_id ?? undefined) : undefined;
  const owner = d.workflow_id ?? undefined;
  // An `inline-…` owner is the process that sent its first attempt (src/services/inlineFirstAttempts.ts): no workflow.
  if (!owner || owner.startsWith('inline-')) return started;
  if (owner.startsWith('delivery-') && started?.startsWith('batch-')) return started;
  return owner;
}

export function deliveryOut(d: DeliveryRow, temporal: { uiUrl?: string; namespace: string }): z.infer<typeof DeliveryOut> {
  const workflowId = operatorWorkflowId(d);
  return {
    id: d.id,
    eventId: d.event_id,
    endpointId: d.endpoint_id,
    eventType: d.event_type,
    status: d.status,
    attemptCount: d.attempt_count,
    nextAttemptAt: d.status === 'pending' ? iso(d.next_attempt_at) : undefined,
    deliveredAt: iso(d.delivered_at),
    finishedReason: d.final_reason ?? undefined,
    createdAt: iso(d.created_at)!,
    test: d.is_test ?? false,
    workflowId,
    workflowUrl:
      temporal.uiUrl && workflowId
        ? `${temporal.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`
        : undefined,
    held: heldOut(d),
  };
}

/** Held while pending and its latest wake-up (held_at) came after its last real attempt. */
function heldOut(d: DeliveryRow): z.infer<typeof DeliveryOut>['held'] {
  if (d.status !== 'pending' || !d.held_at || !d.held_reason) return undefined;
  if (d.last_attempt_at && new Date(d.last_attempt_at) > new Date(d.held_at)) return undefined;
  return { reason: d.held_reason as HoldReason, detail: d.held_detail ?? '', since: iso(d.held_since ?? d.held_at)!, until: iso(d.next_attempt_at) };
}

export function attemptOut(a: AttemptRow): z.infer<typeof AttemptOut> {
  return {
    attempt: a.attempt,
    startedAt: iso(a.started_at)!,
    durationMs: a.duration_ms,
    statusCode: a.status_code ?? undefined,
    error: a.error ?? undefined,
    responseBody: a.response_body ?? undefined,
    requestHeaders: a.request_headers ?? undefined,
    responseHeaders: a.response_headers ?? undefined,
  };
}

/** Never includes the key (shown once at creation) or its hash. */
export function apiKeyOut(k: ApiKeyRow): z.infer<typeof ApiKeyOut> {
  return { id: k.id, name: k.name, prefix: k.prefix, createdAt: iso(k.created_at)!, lastUsedAt: iso(k.last_used_at) ?? null };
}
