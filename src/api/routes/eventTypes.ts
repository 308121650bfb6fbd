import Router from '@koa/router';
import { EVENT_CATALOG, EVENT_TYPES, isEventType, webhookJsonSchema, type EventType } from '../../domain/eventCatalog';
import { ApiError } from '../errors';
import { defineRoute } from '../route';
import { EventTypeOut, EventTypesOut } from '../schemas';

const eventTypeOut = (type: EventType) => ({ type, description: EVENT_CATALOG[type].description, example: EVENT_CATALOG[type].example, schema: webhookJsonSchema(type) });

export function eventTypesRouter(): Router {
  const router = new Router();
  const tag = 'Event types';
  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/event-types',
      operationId: 'listEventTypes',
      example: { response: { data: EVENT_TYPES.map(eventTypeOut) } },
      summary: "The event catalog: every type, what it means, an example payload and the JSON Schema of its webhook body (generated from the service's zod schemas).",
      tag,
      auth: 'any',
      response: { status: 200, schema: EventTypesOut },
    },
    async () => ({ data: EVENT_TYPES.map(eventTypeOut) }),
  );
  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/event-types/:type',
      operationId: 'getEventType',
      example: { params: { type: 'reward_unlocked' }, response: eventTypeOut('reward_unlocked') },
      summary: 'One type of the event catalog: what it means, an example payload and the JSON Schema of its webhook body.',
      tag,
      auth: 'any',
      response: { status: 200, schema: EventTypeOut },
      errors: [404],
    },
    async (ctx) => {
      const type = String(ctx.params.type);
      if (!isEventType(type)) throw new ApiError(404, 'not_found', `There is no event type "${type}"; known: ${EVENT_TYPES.join(', ')}.`);
      return eventTypeOut(type);
    },
  );
  return router;
}
