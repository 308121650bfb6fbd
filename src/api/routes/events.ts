import Router from '@koa/router';
import { EVENT_CATALOG, EVENT_TYPES, isEventType } from '../../domain/eventCatalog';
import { publishEvent, PublishError } from '../../services/publishEvent';
import type { ApiDeps } from '../context';
import { ApiError } from '../errors';
import { defineRoute, parseWith } from '../route';
import { EventAcceptedOut, EventIn } from '../schemas';

export function eventsRouter(deps: ApiDeps): Router {
  const router = new Router();
  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/events',
      operationId: 'publishEvent',
      example: {
        body: { accountId: 'acc_01JM6Z3K9Q8W2E4R6T8Y0U2I4O', eventType: 'referrer_added', idempotencyKey: 'signup-384', data: EVENT_CATALOG.referrer_added.example },
        response: { id: 'evt_01JM6Z5B2C4V6B8N0M2Q4W6E8Q', deliveries: [{ id: 'dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R', endpointId: 'ep_01JM6Z4A1S3D5F7G9H1J3K5L7Z' }] },
      },
      summary: 'Publish an event for an account (admin). One delivery per enabled endpoint subscribed to its type; idempotent on idempotencyKey.',
      tag: 'Events',
      auth: 'admin',
      body: EventIn,
      response: {
        status: 202,
        schema: EventAcceptedOut,
        headers: {
          'Idempotent-Replayed': {
            description: '`true` when this is the original answer to an earlier request with the same idempotencyKey (nothing new was delivered).',
            schema: { type: 'string', enum: ['true'] },
          },
        },
      },
      errors: [404, 409],
    },
    async (ctx, { body }) => {
      if (!isEventType(body.eventType)) {
        throw ApiError.validation([{ path: 'eventType', message: `unknown event type "${body.eventType}"; known: ${EVENT_TYPES.join(', ')}` }]);
      }
      // The catalog decides accept or refuse; receivers get `data` exactly as published (same
      // keys in the same order, `__proto__` included), not the validator's re-built copy.
      const data: unknown = (ctx.state.body as { data: unknown }).data;
      parseWith(EVENT_CATALOG[body.eventType].schema, data, 'data');
      try {
        const published = await publishEvent(
          { db: deps.db, dispatcher: deps.dispatcher, maxPayloadBytes: deps.cfg.MAX_PAYLOAD_BYTES },
          { accountId: body.accountId, eventType: body.eventType, data, idempotencyKey: body.idempotencyKey },
        );
        if (published.replayed) ctx.set('Idempotent-Replayed', 'true');
        return { id: published.id, deliveries: published.deliveries };
      } catch (err) {
        if (err instanceof PublishError) {
          if (err.reason === 'account_not_found') throw ApiError.notFound('account');
          if (err.reason === 'payload_too_large') throw new ApiError(413, 'payload_too_large', err.message);
          throw new ApiError(409, 'idempotency_conflict', err.message);
        }
        throw err;
      }
    },
  );
  return router;
}
