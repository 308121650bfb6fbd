import { finishDelivery } from '../db/deliveries';
import { disableEndpoint } from '../db/endpoints';
import type { DeliveryStatus } from '../domain/errors';
import type { DeliveryActivityDeps } from './deliveryDeps';
import type { AttemptSender } from './sendAttempt';

export interface RecordOutcomeInput {
  deliveryId: string;
  series: number;
  status: Exclude<DeliveryStatus, 'pending'>;
  reason?: string;
  /** The endpoint answered 410 Gone: disable it too. */
  disableEndpoint?: boolean;
}

/**
 * Ends a delivery (delivered, undeliverable or cancelled) unless it ended already; with
 * disableEndpoint (a 410 Gone) its endpoint is disabled too. Returns whether this call ended it.
 */
export function createRecordOutcome(deps: DeliveryActivityDeps, { now }: Pick<AttemptSender, 'now'>) {
  return async function recordOutcome(input: RecordOutcomeInput): Promise<boolean> {
    const at = new Date(await now());
    const changed = await finishDelivery(deps.db, { deliveryId: input.deliveryId, series: input.series, status: input.status, reason: input.reason, at });
    if (input.disableEndpoint) {
      const [d] = await deps.db.query<{ endpoint_id: string }>('select endpoint_id from deliveries where id = $1', [input.deliveryId]);
      if (d) await disableEndpoint(deps.db, d.endpoint_id, input.reason ?? 'receiver answered 410 Gone', at);
    }
    if (changed) deps.metrics?.finished.inc({ status: input.status });
    if ((changed && input.status === 'undeliverable') || input.disableEndpoint) deps.operationalEmitted?.(); // delivery.exhausted, endpoint.disabled
    deps.log.info('delivery.finished', { deliveryId: input.deliveryId, series: input.series, status: input.status, reason: input.reason ?? null, changed });
    return changed;
  };
}

export type RecordOutcome = ReturnType<typeof createRecordOutcome>;
