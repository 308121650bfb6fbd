import type { Queryable } from '../db/database';
import { autoDisableIfDue, recordEndpointFailures, type EndpointFailures } from '../db/endpointHealth';
import { retryDelayMs, type RetrySchedule } from '../domain/retrySchedule';
import type { Logger } from '../logger';

/** Settings of the endpoint circuit breaker (CIRCUIT_* in src/config.ts). */
export interface CircuitSettings {
  /** Consecutive failures that open the circuit. */
  openAfter: number;
}

export const DEFAULT_CIRCUIT: CircuitSettings = { openAfter: 5 };

/** A failed attempt, as the endpoint's health record needs it. */
export interface EndpointFailure {
  endpointId: string;
  accountId: string;
  startedAtMs: number;
  statusCode?: number;
  error: string;
}

/**
 * The endpoint-level side of the delivery activities: moves each endpoint's health record after
 * failed attempts (one statement per batch) and applies auto-disable from the same record.
 */
export function createCircuit(deps: { db: Queryable; log: Logger; autoDisableAfterMs: number; settings?: CircuitSettings }) {
  const settings = deps.settings ?? DEFAULT_CIRCUIT;

  /** Records failed attempts; returns the endpoints this call auto-disabled (their pending deliveries are cancelled). */
  async function failed(failures: EndpointFailure[], schedule: RetrySchedule): Promise<Set<string>> {
    const byEndpoint = new Map<string, EndpointFailures & { accountId: string }>();
    for (const f of failures) {
      const e = byEndpoint.get(f.endpointId) ?? { endpointId: f.endpointId, accountId: f.accountId, at: new Date(f.startedAtMs), count: 0, error: f.error };
      if (f.statusCode !== 429) e.count++; // a 429 is an endpoint that is alive (and asks to slow down)
      if (f.startedAtMs >= e.at.getTime()) {
        e.at = new Date(f.startedAtMs);
        e.error = f.error;
      }
      byEndpoint.set(f.endpointId, e);
    }
    const disabled = new Set<string>();
    if (byEndpoint.size === 0) return disabled;
    const transitions = await recordEndpointFailures(deps.db, [...byEndpoint.values()], settings.openAfter, retryDelayMs(schedule, 1, {}));
    for (const t of transitions) {
      const e = byEndpoint.get(t.endpoint_id)!;
      if (t.state === 'open' && t.prev_state !== 'open' && t.prev_state !== 'probing') {
        deps.log.warn('endpoint.circuit_opened', { endpointId: t.endpoint_id, accountId: e.accountId, consecutiveFailures: t.consecutive_failures, lastError: e.error, nextProbeAt: t.next_probe_at ? new Date(t.next_probe_at).toISOString() : null });
      }
      if (await autoDisableIfDue(deps.db, t.endpoint_id, t.failing_since, e.at, deps.autoDisableAfterMs)) {
        deps.log.warn('endpoint.auto_disabled', { endpointId: t.endpoint_id, accountId: e.accountId });
        disabled.add(t.endpoint_id);
      }
    }
    return disabled;
  }

  return { settings, failed };
}

export type Circuit = ReturnType<typeof createCircuit>;
