import { condition, continueAsNew, defineSignal, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { DeliveryActivities } from '../activities/delivery';
import type { DrainPageResult } from '../activities/drainPage';
import type { RetrySchedule } from '../domain/retrySchedule';

/** Why the drain is woken: a probe succeeded, or a customer asked to retry now (some deliveries, or all). */
export interface DrainWake {
  reason: string;
  /** Only these (retry-now of one delivery); absent: every parked delivery of the endpoint. */
  deliveryIds?: string[];
  /** Send even while the circuit is open: the first request is then the probe. */
  forceProbe?: boolean;
  /** Only deliveries held by the endpoint's send limits (429 pause, rate limit, maxInFlight). */
  heldOnly?: boolean;
}

export interface DrainEndpointInput {
  endpointId: string;
  accountId: string;
  schedule: RetrySchedule;
  attemptTimeoutMs: number;
  /** Wakes carried across continue-as-new. */
  pending?: DrainWake[];
}

export const wakeSignal = defineSignal<[DrainWake]>('wake');

const MAX_PAGES_PER_RUN = 200; // keeps one run's history small

/**
 * The recovery drain of one endpoint (`drain-<endpointId>`, one at a time: started or signalled
 * with signalWithStart). It sends the endpoint's parked deliveries oldest first, in pages, through
 * the ownership claims every sender uses, and hands each back to its own retry workflow in the
 * attempt record; a retry workflow that wakes later finds its delivery delivered and completes.
 * While the endpoint's circuit is open and deliveries wait, it is the endpoint's prober: one
 * probe each time the next one is due. It ends when nothing is left to drain and no wake is
 * pending, or when the endpoint stops (deleted, disabled, not paid).
 */
export async function drainEndpoint(input: DrainEndpointInput): Promise<{ pages: number; delivered: number; failed: number }> {
  const wakes: DrainWake[] = [...(input.pending ?? [])];
  setHandler(wakeSignal, (w) => void wakes.push(w));
  const { drainPage } = proxyLocalActivities<DeliveryActivities>({
    startToCloseTimeout: input.attemptTimeoutMs * 4 + 60_000, // a page is sent in a few rounds of concurrent requests
    retry: { initialInterval: '1s', maximumAttempts: 3 },
  });
  const total = { pages: 0, delivered: 0, failed: 0 };
  let current: { deliveryIds?: string[]; forceProbe: boolean; heldOnly?: boolean; after?: DrainPageResult['after'] } | undefined;
  for (let page = 0; page < MAX_PAGES_PER_RUN; page++) {
    if (!current) {
      if (wakes.length === 0) return total;
      const taken = wakes.splice(0);
      const all = taken.some((w) => !w.deliveryIds);
      current = { deliveryIds: all ? undefined : [...new Set(taken.flatMap((w) => w.deliveryIds ?? []))], forceProbe: taken.some((w) => w.forceProbe) };
      if (taken.every((w) => w.heldOnly)) current.heldOnly = true;
    }
    const r = await drainPage({
      endpointId: input.endpointId,
      accountId: input.accountId,
      schedule: input.schedule,
      deliveryIds: current.deliveryIds,
      forceProbe: current.forceProbe,
      after: current.after,
      ...(current.heldOnly ? { heldOnly: true } : {}),
    });
    total.pages++;
    total.delivered += r.delivered;
    total.failed += r.failed;
    if (r.open && !r.stopped && !r.idle && r.nextProbeAtMs !== undefined) {
      // The circuit is open and deliveries wait: this workflow is the endpoint's prober. One
      // durable timer until the next probe is due (or a wake), then one probe under the lease.
      await condition(() => wakes.length > 0, Math.max(1_000, r.nextProbeAtMs - Date.now()));
      current = wakes.length > 0 ? undefined : { forceProbe: false };
    } else if (r.pausedUntilMs !== undefined && !r.stopped) {
      // The endpoint paused sending (a 429's Retry-After, or its rate limit far ahead): one timer, then on from `after`.
      await condition(() => wakes.length > 0, Math.max(1_000, r.pausedUntilMs - Date.now()));
      current = { ...current, forceProbe: false, after: r.after };
    } else if (r.stopped || r.open)
      current = undefined; // disabled/deleted, or open with nothing pending
    else if (r.recovered)
      current = { forceProbe: false }; // the probe went through: everything parked goes now
    else if (r.done) current = undefined;
    else current = { ...current, forceProbe: false, after: r.after };
  }
  return continueAsNew<typeof drainEndpoint>({
    ...input,
    pending: current ? [{ reason: 'continue', deliveryIds: current.deliveryIds, ...(current.heldOnly ? { heldOnly: true } : {}) }, ...wakes] : wakes,
  });
}
