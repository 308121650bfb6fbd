import Router from '@koa/router';
import type { Context } from 'koa';
import type { z } from 'zod';
import { createEndpoint, getEndpoint, listEndpoints, rotateSecret, softDeleteEndpoint, updateEndpoint, type EndpointRow } from '../../db/endpoints';
import { healthOf } from '../../db/endpointHealth';
import type { EndpointHealthRow } from '../../db/endpointHealth';
import type { EventType } from '../../domain/eventCatalog';
import { PLATFORM_ACCOUNT_ID, type OperationalEventType } from '../../domain/operationalEvents';
import { cancelEndpointDeliveries } from '../../services/deliveryControl';
import { recoverEndpoint } from '../../services/recover';
import type { ApiDeps } from '../context';
import { endpointUrlCheck } from '../endpointUrlCheck';
import { ApiError } from '../errors';
import { endpointOut } from '../mappers';
import { defineRoute } from '../route';
import {
  OperationalEndpointIn,
  OperationalEndpointListOut,
  OperationalEndpointOut,
  OperationalEndpointPatchIn,
  OperationalEndpointWithSecretOut,
  RecoveredOut,
  RecoverIn,
  SecretOut,
} from '../schemas';

const EXAMPLE = {
  id: 'ep_01JM6Z7D4F6H8K0M2P4R6T8V0X',
  url: 'https://platform.example/hooks/webhook-ops',
  eventTypes: ['endpoint.disabled', 'delivery.exhausted'],
  description: 'email customers about their endpoints',
  enabled: true,
  disabledReason: null,
  disabledAt: null,
  createdAt: '2025-02-09T03:00:28.002Z',
  updatedAt: '2025-02-09T03:00:28.002Z',
  health: { state: 'healthy', since: '2025-02-09T03:00:28.002Z', consecutiveFailures: 0 },
};
const SECRET_EXAMPLE = 'whsec_T3BlcmF0aW9uYWxfc2VjcmV0X2V4YW1wbGU';
const RECOVER_LIMIT = 1000;

/** An operational endpoint as the API shows it (no send limits: the platform's own receiver). */
function operationalOut(e: EndpointRow, health?: EndpointHealthRow): z.infer<typeof OperationalEndpointOut> {
  const { rateLimitPerSecond: _r, maxInFlight: _m, headers: _h, ...out } = endpointOut(e, health);
  return { ...out, eventTypes: e.event_types as unknown as OperationalEventType[] };
}

/**
 * Operational endpoints (admin token): the platform's own receivers of the operational events
 * (src/domain/operationalEvents.ts). They are endpoints of the internal platform account, so they
 * are signed, delivered, retried, circuit-broken and recovered exactly like customers' endpoints.
 */
export function operationalEndpointsRouter(deps: ApiDeps): Router {
  const router = new Router();
  const tag = 'Operational webhooks';
  const P = PLATFORM_ACCOUNT_ID;
  const found = async (ctx: Context) => {
    const ep = await getEndpoint(deps.db, P, ctx.params.id);
    if (!ep) throw ApiError.notFound('operational endpoint');
    return ep;
  };
  const checkUrl = endpointUrlCheck(deps.guard);
  const withHealth = async (ep: EndpointRow) => operationalOut(ep, (await healthOf(deps.db, [ep.id])).get(ep.id));

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/operational-endpoints',
      operationId: 'createOperationalEndpoint',
      example: {
        body: { url: EXAMPLE.url, eventTypes: ['endpoint.disabled', 'delivery.exhausted'], description: EXAMPLE.description },
        response: { ...EXAMPLE, secret: SECRET_EXAMPLE },
      },
      summary:
        'Register an operational endpoint of the platform (admin): it receives the operational events it subscribes to (see `webhooks` in this document), signed like any webhook. The response carries its signing secret.',
      tag,
      auth: 'admin',
      body: OperationalEndpointIn,
      check: checkUrl,
      response: { status: 201, schema: OperationalEndpointWithSecretOut },
    },
    async (_ctx, { body }) => {
      const ep = await createEndpoint(deps.db, P, { ...body, eventTypes: body.eventTypes as unknown as EventType[] });
      return { ...operationalOut(ep), secret: ep.secret };
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/operational-endpoints',
      operationId: 'listOperationalEndpoints',
      example: { response: { data: [EXAMPLE] } },
      summary: 'List the operational endpoints (admin; secrets not included).',
      tag,
      auth: 'admin',
      response: { status: 200, schema: OperationalEndpointListOut },
    },
    async () => {
      const endpoints = await listEndpoints(deps.db, P);
      const health = await healthOf(
        deps.db,
        endpoints.map((e) => e.id),
      );
      return { data: endpoints.map((e) => operationalOut(e, health.get(e.id))) };
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/operational-endpoints/:id',
      operationId: 'getOperationalEndpoint',
      example: { response: EXAMPLE },
      summary: 'Read one operational endpoint (admin).',
      tag,
      auth: 'admin',
      response: { status: 200, schema: OperationalEndpointOut },
      errors: [404],
    },
    async (ctx) => withHealth(await found(ctx)),
  );

  defineRoute(
    router,
    {
      method: 'patch',
      path: '/v1/operational-endpoints/:id',
      operationId: 'updateOperationalEndpoint',
      example: {
        body: { eventTypes: ['endpoint.failing', 'endpoint.disabled', 'endpoint.recovered'] },
        response: { ...EXAMPLE, eventTypes: ['endpoint.failing', 'endpoint.disabled', 'endpoint.recovered'] },
      },
      summary: "Change an operational endpoint's URL, event types, description or enabled (admin). Disabling cancels its pending deliveries.",
      tag,
      auth: 'admin',
      body: OperationalEndpointPatchIn,
      check: checkUrl,
      response: { status: 200, schema: OperationalEndpointOut },
      errors: [404],
    },
    async (ctx, { body }) => {
      const before = await found(ctx);
      const ep = await updateEndpoint(deps.db, P, before.id, { ...body, eventTypes: body.eventTypes as unknown as EventType[] | undefined });
      if (!ep) throw ApiError.notFound('operational endpoint');
      if (before.enabled && !ep.enabled) await cancelEndpointDeliveries(deps, ep.id, 'endpoint disabled');
      return withHealth(ep);
    },
  );

  defineRoute(
    router,
    {
      method: 'delete',
      path: '/v1/operational-endpoints/:id',
      operationId: 'deleteOperationalEndpoint',
      example: {},
      summary: 'Delete an operational endpoint (admin); its pending deliveries end cancelled.',
      tag,
      auth: 'admin',
      response: { status: 204 },
      errors: [404],
    },
    async (ctx) => {
      const ep = await found(ctx);
      await softDeleteEndpoint(deps.db, P, ep.id);
      await cancelEndpointDeliveries(deps, ep.id, 'endpoint deleted');
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/operational-endpoints/:id/secret',
      operationId: 'getOperationalEndpointSecret',
      example: { response: { secret: SECRET_EXAMPLE } },
      summary: "Reveal an operational endpoint's signing secret (admin).",
      tag,
      auth: 'admin',
      response: { status: 200, schema: SecretOut },
      errors: [404],
    },
    async (ctx) => ({ secret: (await found(ctx)).secret }),
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/operational-endpoints/:id/secret/rotate',
      operationId: 'rotateOperationalEndpointSecret',
      example: { response: { secret: 'whsec_Um90YXRlZF9vcGVyYXRpb25hbF9zZWNyZXQ' } },
      summary: 'Issue a new signing secret for an operational endpoint (admin); the previous one keeps signing for SECRET_ROTATION_OVERLAP.',
      tag,
      auth: 'admin',
      response: { status: 200, schema: SecretOut },
      errors: [404],
    },
    async (ctx) => {
      const ep = await rotateSecret(deps.db, P, (await found(ctx)).id, deps.cfg.SECRET_ROTATION_OVERLAP);
      if (!ep) throw ApiError.notFound('operational endpoint');
      return { secret: ep.secret };
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/operational-endpoints/:id/recover',
      operationId: 'recoverOperationalEndpoint',
      example: {
        body: { since: '2025-02-08T00:00:00Z' },
        response: { deliveryIds: ['dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R'], recovered: { undeliverable: 0, cancelled: 0, missing: 1 }, more: false },
      },
      summary: `Recover what an operational endpoint lost since a time (admin), exactly as POST /v1/endpoints/{id}/recover does for a customer's endpoint: at most \`limit\` (default ${RECOVER_LIMIT}) per call, idempotent.`,
      tag,
      auth: 'admin',
      body: RecoverIn,
      response: { status: 202, schema: RecoveredOut },
      errors: [404, 409],
    },
    async (ctx, { body }) => {
      const ep = await found(ctx);
      if (!ep.enabled) throw new ApiError(409, 'endpoint_disabled', 'Enable the operational endpoint before recovering its deliveries.');
      return recoverEndpoint(deps, ep, { since: new Date(body.since), limit: body.limit ?? RECOVER_LIMIT, include: body.include });
    },
  );

  return router;
}
