import type { Queryable } from '../db/database';
import { cancelPendingOfEndpoint, startNewSeries, type DeliveryRow } from '../db/deliveries';
import type { SendStops } from '../http/sendStops';
import type { Dispatcher } from './dispatcher';

/**
 * Endpoint deleted or disabled (or its account downgraded), already committed: its pending
 * deliveries end `cancelled` now, and their workflows stop. Call before answering: once this
 * returns, no request of the endpoint starts any more (the worker checks the database before each
 * request; `sendStops` aborts those of this process that were cleared but are not on the wire yet).
 */
export async function cancelEndpointDeliveries(deps: { db: Queryable; dispatcher: Dispatcher; sendStops?: SendStops }, endpointId: string, reason: string): Promise<number> {
  deps.sendStops?.stop(endpointId);
  const cancelled = await cancelPendingOfEndpoint(deps.db, endpointId, reason);
  await Promise.all(cancelled.map((d) => deps.dispatcher.cancel(d)));
  return cancelled.length;
}

/** A new attempt series for a finished delivery, starting now; undefined if it is still pending. */
export async function resendDelivery(deps: { db: Queryable; dispatcher: Dispatcher }, accountId: string, deliveryId: string): Promise<DeliveryRow | undefined> {
  const row = await startNewSeries(deps.db, accountId, deliveryId);
  if (row) await deps.dispatcher.dispatchAll([{ id: row.id, series: row.series }]);
  return row;
}
