import Router from '@koa/router';
import { EVENT_CATALOG, EVENT_TYPES } from '../../domain/eventCatalog';
import { defineRoute } from '../route';
import { EventTypesOut } from '../schemas';

export function eventTypesRouter(): Router {
  const router = new Router();
  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/event-types',
      operationId: 'listEventTypes',
      example: { response: { data: EVENT_TYPES.map((type) => ({ type, description: EVENT_CATALOG[type].description, example: EVENT_CATALOG[type].example })) } },
      summary: 'The event catalog: every type, what it means, and an example payload.',
      tag: 'Event types',
      auth: 'any',
      response: { status: 200, schema: EventTypesOut },
    },
    async () => ({
      data: EVENT_TYPES.map((type) => ({ type, description: EVENT_CATALOG[type].description, example: EVENT_CATALOG[type].example })),
    }),
  );
  return router;
}
