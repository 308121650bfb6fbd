import Router from '@koa/router';
import { attemptsOf, getDelivery, listDeliveries } from '../../db/deliveries';
import { getEndpoint } from '../../db/endpoints';
import { endThrottle } from '../../db/endpointLimits';
import { resendDelivery } from '../../services/deliveryControl';
import type { ApiDeps } from '../context';
import type { Context } from 'koa';
import { actingAccount, principal } from '../auth';
import { ApiError } from '../errors';
import { attemptOut, deliveryOut } from '../mappers';
import { defineRoute } from '../route';
import { BulkResendIn, BulkResendOut, BulkResendPreviewOut, BulkResendPreviewQuery, DeliveryDetailOut, DeliveryListOut, DeliveryListQuery, ResendOut } from '../schemas';
import { countResendMatching, resendMatching } from '../../db/recover';

const DELIVERY_EXAMPLE = {
  id: 'dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R',
  eventId: 'evt_01JM6Z5B2C4V6B8N0M2Q4W6E8Q',
  endpointId: 'ep_01JM6Z4A1S3D5F7G9H1J3K5L7Z',
  eventType: 'referrer_added',
  status: 'delivered',
  attemptCount: 1,
  deliveredAt: '2025-02-09T03:00:28.140Z',
  createdAt: '2025-02-09T03:00:28.002Z',
  test: false,
  workflowId: 'batch-acc_01JM6Z3K9Q8W2E4R6T8Y0U2I4O-01JM6Z5B',
};

export function deliveriesRouter(deps: ApiDeps): Router {
  const router = new Router();
  const tag = 'Deliveries';
  const temporal = { uiUrl: deps.cfg.TEMPORAL_UI_URL, namespace: deps.cfg.TEMPORAL_NAMESPACE };
  // The Temporal Web UI is the operator's (and unauthenticated): only the admin gets links to it.
  const temporalFor = (ctx: Context) => (principal(ctx).kind === 'admin' ? temporal : { namespace: temporal.namespace });

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/deliveries',
      operationId: 'listDeliveries',
      example: { response: { data: [DELIVERY_EXAMPLE], nextCursor: null } },
      summary:
        'The delivery log, newest first, filtered (status, endpoint, event type, creation time range, test or not) or searched (an event id or delivery id), and paged (pass nextCursor as cursor).',
      tag,
      auth: 'account',
      query: DeliveryListQuery,
      response: { status: 200, schema: DeliveryListOut },
    },
    async (ctx, { query }) => {
      const a = await actingAccount(ctx, deps.db);
      const rows = await listDeliveries(deps.db, a.id, {
        status: query.status as never,
        endpointId: query.endpointId,
        eventType: query.eventType,
        since: query.since ? new Date(query.since) : undefined,
        until: query.until ? new Date(query.until) : undefined,
        eventId: query.eventId,
        deliveryId: query.deliveryId,
        test: query.test,
        before: query.cursor,
        limit: query.limit + 1,
      });
      const page = rows.slice(0, query.limit);
      return { data: page.map((d) => deliveryOut(d, temporalFor(ctx))), nextCursor: rows.length > query.limit ? page[page.length - 1].id : null };
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/deliveries/:id',
      operationId: 'getDelivery',
      example: {
        response: {
          ...DELIVERY_EXAMPLE,
          attempts: [
            {
              attempt: 1,
              startedAt: '2025-02-09T03:00:28.031Z',
              durationMs: 109,
              statusCode: 200,
              responseBody: 'ok',
              requestHeaders: {
                Authorization: '••••x9Qk',
                'content-type': 'application/json',
                'user-agent': 'rr-webhooks/0.1 (+https://github.com/rr-webhooks)',
                'webhook-id': 'dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R',
                'webhook-timestamp': '1739070028',
                'webhook-signature': 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
                'x-rr-signature': '2b9a19fcd37de59f5456ed4b1f4266f55342867919da63fda3d0d337f1ffa48e',
                'content-length': '112',
              },
              responseHeaders: { 'content-type': 'text/plain; charset=utf-8', 'x-request-id': 'req_8f2d1c', date: 'Sun, 09 Feb 2025 03:00:28 GMT' },
            },
          ],
          payload: '{"eventType":"referrer_added","data":{"participantId":384},"createdAt":1739070028002,"updatedAt":1739070028002}',
        },
      },
      summary: 'One delivery with every attempt and the exact payload.',
      tag,
      auth: 'account',
      response: { status: 200, schema: DeliveryDetailOut },
      errors: [404],
    },
    async (ctx) => {
      const a = await actingAccount(ctx, deps.db);
      const d = await getDelivery(deps.db, a.id, ctx.params.id);
      if (!d) throw ApiError.notFound('delivery');
      const [attempts, [event]] = await Promise.all([
        attemptsOf(deps.db, d.id),
        deps.db.query<{ body: string; purged_at: Date | null }>('select body, purged_at from events where id = $1', [d.event_id]),
      ]);
      return { ...deliveryOut(d, temporalFor(ctx)), attempts: attempts.map(attemptOut), payload: event.purged_at ? null : event.body };
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/deliveries/:id/resend',
      operationId: 'resendDelivery',
      example: { response: { deliveryId: DELIVERY_EXAMPLE.id } },
      summary: 'Start a new attempt series now (same webhook-id, so receivers can deduplicate).',
      tag,
      auth: 'account',
      response: { status: 202, schema: ResendOut },
      errors: [402, 404, 409],
      limit: 'send',
    },
    async (ctx) => {
      const a = await actingAccount(ctx, deps.db);
      if (a.plan !== 'paid') throw ApiError.planRequired();
      const d = await getDelivery(deps.db, a.id, ctx.params.id);
      if (!d) throw ApiError.notFound('delivery');
      const ep = await getEndpoint(deps.db, a.id, d.endpoint_id);
      if (!ep) throw new ApiError(409, 'endpoint_deleted', 'The endpoint of this delivery was deleted.');
      if (!ep.enabled) throw new ApiError(409, 'endpoint_disabled', 'Enable the endpoint before resending.');
      const row = await resendDelivery(deps, a.id, d.id);
      if (!row) {
        const [purged] = await deps.db.query('select 1 from events where id = $1 and purged_at is not null', [d.event_id]);
        if (purged) throw new ApiError(409, 'payload_purged', 'The payload of this delivery was purged by retention; it cannot be resent.');
        throw new ApiError(409, 'delivery_pending', 'This delivery is still being retried; resend it once it has finished.');
      }
      return { deliveryId: row.id };
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/delivery-resends',
      operationId: 'resendDeliveries',
      example: {
        body: { status: 'undeliverable', endpointId: 'ep_01JM6Z4A1S3D5F7G9H1J3K5L7Z', since: '2025-02-08T00:00:00Z' },
        response: { deliveryIds: [DELIVERY_EXAMPLE.id], more: false },
      },
      summary:
        'Bulk resend: a new attempt series now (same webhook-id) for every undeliverable or cancelled delivery matching the filter (status, and optionally endpoint, event type and creation time, as the delivery log filters), oldest first, at most `limit` (1000) per call. Deliveries of a disabled or deleted endpoint, and purged payloads, are left out; a repeated call resends nothing twice.',
      tag,
      auth: 'account',
      body: BulkResendIn,
      response: { status: 202, schema: BulkResendOut },
      errors: [402],
      limit: 'send',
    },
    async (ctx, { body }) => {
      const a = await actingAccount(ctx, deps.db);
      if (a.plan !== 'paid') throw ApiError.planRequired();
      const limit = body.limit ?? 1000;
      const rows = await resendMatching(
        deps.db,
        a.id,
        {
          status: body.status,
          endpointId: body.endpointId,
          eventType: body.eventType,
          since: body.since ? new Date(body.since) : undefined,
          until: body.until ? new Date(body.until) : undefined,
        },
        limit,
      );
      await deps.dispatcher.dispatchAll(
        rows.map((r) => ({ id: r.id, series: r.series, meta: { accountId: a.id, endpointId: r.endpoint_id, eventType: r.event_type, url: r.url } })),
      );
      return { deliveryIds: rows.map((r) => r.id), more: rows.length >= limit };
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/delivery-resends/preview',
      operationId: 'previewResendDeliveries',
      example: { response: { count: 12, skipped: 3 } },
      summary:
        'What a bulk resend (POST /v1/delivery-resends) with this filter would do, without doing it: how many deliveries it would resend, and how many more match but would be left out (endpoint disabled or deleted, payload purged). The settings page asks for confirmation with it.',
      tag,
      auth: 'account',
      query: BulkResendPreviewQuery,
      response: { status: 200, schema: BulkResendPreviewOut },
    },
    async (ctx, { query }) => {
      const a = await actingAccount(ctx, deps.db);
      return countResendMatching(deps.db, a.id, {
        status: query.status,
        endpointId: query.endpointId,
        eventType: query.eventType,
        since: query.since ? new Date(query.since) : undefined,
        until: query.until ? new Date(query.until) : undefined,
      });
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/deliveries/:id/retry',
      operationId: 'retryDelivery',
      example: { response: { deliveryId: DELIVERY_EXAMPLE.id } },
      summary:
        "Retry now: a pending delivery is attempted now instead of at its next back-off slot (also when held by an open circuit: it is then the probe, and its success sends the endpoint's other held deliveries). A pause the receiver asked for (429, or 503 with Retry-After) ends too.",
      tag,
      auth: 'account',
      response: { status: 202, schema: ResendOut },
      errors: [402, 404, 409],
      limit: 'send',
    },
    async (ctx) => {
      const a = await actingAccount(ctx, deps.db);
      if (a.plan !== 'paid') throw ApiError.planRequired();
      const d = await getDelivery(deps.db, a.id, ctx.params.id);
      if (!d) throw ApiError.notFound('delivery');
      if (d.status !== 'pending')
        throw new ApiError(409, 'delivery_not_pending', `This delivery is ${d.status}; only a pending delivery can be retried now (resend a finished one).`);
      await endThrottle(deps.db, d.endpoint_id); // "fixed it": a 429 / Retry-After pause is a wait to skip too
      await deps.dispatcher.wakeDrain({ endpointId: d.endpoint_id, accountId: a.id, reason: 'retry-now', deliveryIds: [d.id], forceProbe: true });
      return { deliveryId: d.id };
    },
  );

  return router;
}
