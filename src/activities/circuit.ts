import type { Queryable } from '../db/database';
import { oldestFirst, type AttemptContext } from '../db/deliveries';
import {
  autoDisableIfDue,
  finishProbe,
  markHeld,
  recordEndpointFailures,
  scheduleProbe,
  takeProbeLease,
  type EndpointFailures,
  type EndpointHealthRow,
  type HeldWakeup,
} from '../db/endpointHealth';
import { decideGate, holdDelayMs, nextProbeDelayMs, probeIntervalMs, type HoldReason } from '../domain/endpointGate';
import { retryDelayMs, type RetrySchedule } from '../domain/retrySchedule';
import type { Logger } from '../logger';

/** Settings of the endpoint circuit breaker (CIRCUIT_* in src/config.ts). */
export interface CircuitSettings {
  /** Consecutive failures that open the circuit. */
  openAfter: number;
  /** Longest wait between two probes of an open circuit. */
  probeMaxIntervalMs: number;
  /** How long a probe's lease lasts if its owner dies (attempt timeout + room). */
  probeLeaseMs: number;
}

export const DEFAULT_CIRCUIT: CircuitSettings = { openAfter: 5, probeMaxIntervalMs: 12 * 3_600_000, probeLeaseMs: 45_000 };

/** A failed attempt, as the endpoint's health record needs it. */
export interface EndpointFailure {
  deliveryId: string;
  endpointId: string;
  accountId: string;
  startedAtMs: number;
  statusCode?: number;
  error: string;
}

/** A delivery this run does not send because its endpoint's circuit is open. */
export interface Held {
  ctx: AttemptContext;
  reason: HoldReason;
  detail: string;
  delayMs: number;
}

/** This run's probe of an endpoint: the delivery sent as the probe, and the probe's number. */
export interface Probe {
  deliveryId: string;
  owner: string;
  probeAttempt: number;
  /** Start of the endpoint's failure streak (anchors the probe schedule). */
  failingSinceMs?: number;
}

export interface GateResult {
  send: AttemptContext[];
  /** By endpoint id. */
  probes: Map<string, Probe>;
  held: Held[];
}

const isoOrNull = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

function heldDetail(h: EndpointHealthRow, reason: HoldReason): string {
  const opened = `circuit open since ${isoOrNull(h.since)} after ${h.consecutive_failures} failed attempts in a row${h.last_error ? ` (last error: ${h.last_error})` : ''}`;
  return reason === 'probing' ? `endpoint ${opened}; a probe request is out now` : `endpoint ${opened}; next probe at ${isoOrNull(h.next_probe_at) ?? 'the next wake-up'}`;
}

/**
 * The endpoint-level side of the delivery activities: before sending, decides per endpoint whether
 * its deliveries are sent, one of them is the probe of an open circuit, or they are held (no
 * request, no attempt row); after failures, moves each endpoint's health record (one statement per
 * batch) and applies auto-disable from the same record.
 */
export function createCircuit(deps: {
  db: Queryable;
  log: Logger;
  autoDisableAfterMs: number;
  settings?: CircuitSettings;
  circuitOpened?: (endpointId: string, accountId: string) => Promise<void> | undefined;
  operationalEmitted?: () => void;
}) {
  const settings = deps.settings ?? DEFAULT_CIRCUIT;

  /**
   * Splits the deliveries `owner` is about to attempt. An endpoint whose circuit is closed sends
   * them all (no extra statement); an open one whose probe is due sends its oldest as the probe if
   * this run wins the lease, and holds the rest. `wakeups` gives each delivery's wake-ups so far.
   */
  async function gate(
    ctxs: AttemptContext[],
    owner: string,
    nowMs: number,
    input: { schedule: RetrySchedule; windowEndsAtMs: number },
    wakeups: (ctx: AttemptContext) => number,
  ): Promise<GateResult> {
    const out: GateResult = { send: [], probes: new Map(), held: [] };
    const byEndpoint = new Map<string, AttemptContext[]>();
    for (const ctx of ctxs) {
      if (!ctx.health || ctx.health.state === 'healthy' || ctx.health.state === 'failing') out.send.push(ctx);
      else byEndpoint.set(ctx.delivery.endpoint_id, [...(byEndpoint.get(ctx.delivery.endpoint_id) ?? []), ctx]);
    }
    for (const [endpointId, group] of byEndpoint) {
      group.sort(oldestFirst);
      const h = group[0].health!;
      const decision = decideGate(h, nowMs, owner);
      let rest = group;
      let reason: HoldReason = h.state === 'probing' ? 'probing' : 'circuit_open';
      if (decision.kind === 'send') rest = [];
      else if (decision.kind === 'hold') reason = decision.reason;
      else {
        const probeAttempt = await takeProbeLease(deps.db, endpointId, owner, new Date(nowMs), settings.probeLeaseMs);
        if (probeAttempt !== undefined) {
          out.send.push(group[0]);
          out.probes.set(endpointId, { deliveryId: group[0].delivery.id, owner, probeAttempt, failingSinceMs: h.failing_since ? new Date(h.failing_since).getTime() : undefined });
          deps.log.info('endpoint.probe', { endpointId, accountId: group[0].delivery.account_id, deliveryId: group[0].delivery.id, probeAttempt });
          rest = group.slice(1);
          reason = 'probing';
        }
      }
      if (decision.kind === 'send') out.send.push(...group);
      const interval = probeIntervalMs(input.schedule, h.probe_attempt, settings.probeMaxIntervalMs);
      const nextProbeAtMs = h.next_probe_at ? new Date(h.next_probe_at).getTime() : nowMs;
      for (const ctx of rest) {
        const delayMs = holdDelayMs({ nowMs, nextProbeAtMs, probeIntervalMs: interval, schedule: input.schedule, wakeups: wakeups(ctx), windowEndsAtMs: input.windowEndsAtMs });
        out.held.push({ ctx, reason, detail: heldDetail(h, reason), delayMs });
      }
    }
    return out;
  }

  /** Records held wake-ups (one statement) and logs them; `handOver` gives each one's new owner (a batch hands them to their retry workflows). */
  async function hold(owner: string, nowMs: number, held: Held[], handOver?: (ctx: AttemptContext) => string): Promise<Set<string>> {
    const rows: HeldWakeup[] = held.map((x) => ({
      deliveryId: x.ctx.delivery.id,
      series: x.ctx.delivery.series,
      reason: x.reason,
      detail: x.detail,
      until: new Date(nowMs + x.delayMs),
      handOverTo: handOver?.(x.ctx),
    }));
    const marked = new Set(await markHeld(deps.db, owner, new Date(nowMs), rows));
    for (const x of held) {
      const d = x.ctx.delivery;
      deps.log.info('delivery.held', {
        deliveryId: d.id,
        accountId: d.account_id,
        endpointId: d.endpoint_id,
        series: d.series,
        reason: x.reason,
        until: new Date(nowMs + x.delayMs).toISOString(),
      });
    }
    return marked;
  }

  /**
   * Records failed attempts; a failed probe reopens the circuit with the next probe one probe
   * interval later. Returns the endpoints this call auto-disabled (their pending deliveries are cancelled).
   */
  async function failed(failures: EndpointFailure[], schedule: RetrySchedule, probes?: Map<string, Probe>): Promise<Set<string>> {
    const disabled = new Set<string>();
    const byEndpoint = new Map<string, EndpointFailures & { accountId: string }>();
    for (const f of failures) {
      const probe = probes?.get(f.endpointId);
      if (probe && probe.deliveryId === f.deliveryId) {
        const next = nextProbeDelayMs(schedule, f.startedAtMs - (probe.failingSinceMs ?? f.startedAtMs), settings.probeMaxIntervalMs);
        const row = await finishProbe(deps.db, f.endpointId, probe.owner, new Date(f.startedAtMs), f.error, next);
        if (row) {
          deps.log.info('endpoint.probe_failed', {
            endpointId: f.endpointId,
            accountId: f.accountId,
            deliveryId: f.deliveryId,
            error: f.error,
            nextProbeAt: isoOrNull(row.next_probe_at),
          });
          if (await autoDisableIfDue(deps.db, f.endpointId, row.failing_since, new Date(f.startedAtMs), deps.autoDisableAfterMs)) {
            deps.log.warn('endpoint.auto_disabled', { endpointId: f.endpointId, accountId: f.accountId });
            disabled.add(f.endpointId);
          }
          continue;
        }
        // The lease was lost meanwhile (expired and taken): an ordinary failure.
      }
      const e = byEndpoint.get(f.endpointId) ?? { endpointId: f.endpointId, accountId: f.accountId, at: new Date(f.startedAtMs), count: 0, error: f.error };
      if (f.statusCode !== 429) e.count++; // a 429 is an endpoint that is alive (and asks to slow down)
      if (f.startedAtMs >= e.at.getTime()) {
        e.at = new Date(f.startedAtMs);
        e.error = f.error;
      }
      byEndpoint.set(f.endpointId, e);
    }
    if (byEndpoint.size === 0) return signal(disabled);
    const transitions = await recordEndpointFailures(deps.db, [...byEndpoint.values()], settings.openAfter, retryDelayMs(schedule, 1, {}));
    let opened = false;
    for (const t of transitions) {
      const e = byEndpoint.get(t.endpoint_id)!;
      if (t.state === 'open' && t.prev_state !== 'open' && t.prev_state !== 'probing') {
        opened = true; // endpoint.failing was emitted with the transition
        deps.log.warn('endpoint.circuit_opened', {
          endpointId: t.endpoint_id,
          accountId: e.accountId,
          consecutiveFailures: t.consecutive_failures,
          lastError: e.error,
          nextProbeAt: isoOrNull(t.next_probe_at),
        });
        // The first probe: the retry schedule anchored at the streak's start.
        const at = e.at.getTime();
        await scheduleProbe(deps.db, t.endpoint_id, new Date(at + nextProbeDelayMs(schedule, at - new Date(t.failing_since).getTime(), settings.probeMaxIntervalMs)));
        await deps.circuitOpened?.(t.endpoint_id, e.accountId);
      }
      if (await autoDisableIfDue(deps.db, t.endpoint_id, t.failing_since, e.at, deps.autoDisableAfterMs)) {
        deps.log.warn('endpoint.auto_disabled', { endpointId: t.endpoint_id, accountId: e.accountId });
        disabled.add(t.endpoint_id);
      }
    }
    if (opened) deps.operationalEmitted?.();
    return signal(disabled);
  }

  /** Auto-disable emitted endpoint.disabled: its deliveries can start now. */
  function signal(disabled: Set<string>): Set<string> {
    if (disabled.size) deps.operationalEmitted?.();
    return disabled;
  }

  return { settings, gate, hold, failed };
}

export type Circuit = ReturnType<typeof createCircuit>;
