import type { Queryable } from '../db/database';
import type { EndpointRow } from '../db/endpoints';
import { createMissing, resendFinished, type Recovered } from '../db/recover';
import type { Dispatcher } from './dispatcher';

export type RecoverKind = Recovered['kind'];
export const RECOVER_KINDS: RecoverKind[] = ['undeliverable', 'cancelled', 'missing'];

export interface RecoverResult {
  deliveryIds: string[];
  recovered: Record<RecoverKind, number>;
  more: boolean;
}

/**
 * Brings back what an endpoint lost since a time, at most `limit` deliveries per call: its
 * undeliverable and cancelled deliveries (a new attempt series each, same webhook-id), then the
 * events it never got a delivery for (new deliveries). Everything goes through the normal
 * delivery path (workflows, claims, the endpoint's circuit and limits). Repeating the call brings
 * back nothing twice: resent deliveries are pending, and missing events have their delivery now.
 */
export async function recoverEndpoint(
  deps: { db: Queryable; dispatcher: Dispatcher },
  ep: Pick<EndpointRow, 'id' | 'account_id' | 'url'>,
  opts: { since: Date; limit: number; include?: RecoverKind[] },
): Promise<RecoverResult> {
  const include = new Set(opts.include ?? RECOVER_KINDS);
  const statuses = (['undeliverable', 'cancelled'] as const).filter((k) => include.has(k));
  const resent = await resendFinished(deps.db, ep.id, statuses, opts.since, opts.limit);
  const missing = include.has('missing') ? await createMissing(deps.db, ep.id, opts.since, opts.limit - resent.length) : [];
  const all = [...resent, ...missing];
  await deps.dispatcher.dispatchAll(all.map((r) => ({ id: r.id, series: r.series, meta: { accountId: ep.account_id, endpointId: ep.id, eventType: r.event_type, url: ep.url } })));
  const recovered: Record<RecoverKind, number> = { undeliverable: 0, cancelled: 0, missing: 0 };
  for (const r of all) recovered[r.kind]++;
  return { deliveryIds: all.map((r) => r.id), recovered, more: all.length >= opts.limit };
}
