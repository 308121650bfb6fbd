import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AccountRow } from '../../db/accounts';
import { createEndpointWithinCap, getEndpoint, listEndpoints, rotateSecret, softDeleteEndpoint, updateEndpoint } from '../../db/endpoints';
import { healthOf } from '../../db/endpointHealth';
import { pendingOfEndpoint } from '../../db/drain';
import { endThrottle } from '../../db/endpointLimits';
import { EVENT_CATALOG } from '../../domain/eventCatalog';
import { cancelEndpointDeliveries } from '../../services/deliveryControl';
import { recoverEndpoint } from '../../services/recover';
import { publishEvent } from '../../services/publishEvent';
import type { ApiDeps } from '../context';
import { actingAccount } from '../auth';
import { endpointUrlCheck } from '../endpointUrlCheck';
import { ApiError } from '../errors';
import { endpointOut } from '../mappers';
import { defineRoute } from '../route';
import { endpointStats } from '../../db/endpointStats';
import {
  EndpointIn,
  EndpointStatsOut,
  EndpointStatsQuery,
  EndpointListOut,
  EndpointOut,
  EndpointPatchIn,
  EndpointWithSecretOut,
  RecoveredOut,
  RecoverIn,
  RecoverOut,
  ResendOut,
  SecretOut,
  TestIn,
} from '../schemas';

const RECOVER_LIMIT = 1000;
const ENDPOINT_EXAMPLE = {
  id: 'ep_01JM6Z4A1S3D5F7G9H1J3K5L7Z',
  url: 'https://hooks.acme.example/referrals',
  eventTypes: ['referrer_added', 'reward_unlocked'],
  description: 'CRM sync',
  enabled: true,
  disabledReason: null,
  disabledAt: null,
  createdAt: '2025-02-09T03:00:28.002Z',
  updatedAt: '2025-02-09T03:00:28.002Z',
  rateLimitPerSecond: null,
  maxInFlight: null,
  headers: { 'X-Tenant': 'acme' },
  health: { state: 'healthy', since: '2025-02-09T03:00:28.002Z', consecutiveFailures: 0 },
};
const SECRET_EXAMPLE = 'whsec_MfKQ9r8GKYqTqM0L4Y1xZ9b2d3e4f5g6';

export function endpointsRouter(deps: ApiDeps): Router {
  const router = new Router();
  const tag = 'Endpoints';
  const account = (ctx: Context) => actingAccount(ctx, deps.db);
  const paid = (a: AccountRow) => {
    if (a.plan !== 'paid') throw ApiError.planRequired();
  };
  const found = async (ctx: Context, a: AccountRow) => {
    const ep = await getEndpoint(deps.db, a.id, ctx.params.id);
    if (!ep) throw ApiError.notFound('endpoint');
    return ep;
  };
  const checkUrl = endpointUrlCheck(deps.guard);

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/endpoints',
      operationId: 'createEndpoint',
      example: {
        body: { url: ENDPOINT_EXAMPLE.url, eventTypes: ['referrer_added', 'reward_unlocked'], description: 'CRM sync', headers: { 'X-Tenant': 'acme' } },
        response: { ...ENDPOINT_EXAMPLE, secret: SECRET_EXAMPLE },
      },
      summary: 'Add a webhook endpoint (at most MAX_ENDPOINTS_PER_ACCOUNT per account, else 409 endpoint_limit_reached). The response carries its signing secret.',
      tag,
      auth: 'account',
      body: EndpointIn,
      check: checkUrl,
      response: { status: 201, schema: EndpointWithSecretOut },
      errors: [402, 409],
    },
    async (ctx, { body }) => {
      const a = await account(ctx);
      paid(a);
      const max = deps.cfg.MAX_ENDPOINTS_PER_ACCOUNT;
      const ep = await createEndpointWithinCap(deps.db, a.id, body, max);
      if (!ep)
        throw new ApiError(
          409,
          'endpoint_limit_reached',
          `The account already has ${max} endpoints, the most it may have (MAX_ENDPOINTS_PER_ACCOUNT); delete one before adding another.`,
        );
      deps.dispatcher?.kickOperational(); // endpoint.created
      return { ...endpointOut(ep), secret: ep.secret };
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/endpoints',
      operationId: 'listEndpoints',
      example: { response: { data: [ENDPOINT_EXAMPLE] } },
      summary: "List the account's endpoints (secrets not included).",
      tag,
      auth: 'account',
      response: { status: 200, schema: EndpointListOut },
    },
    async (ctx) => {
      const a = await account(ctx);
      const endpoints = await listEndpoints(deps.db, a.id);
      const health = await healthOf(
        deps.db,
        endpoints.map((e) => e.id),
      );
      return { data: endpoints.map((e) => endpointOut(e, health.get(e.id))) };
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/endpoints/:id',
      operationId: 'getEndpoint',
      example: { response: ENDPOINT_EXAMPLE },
      summary: 'Read one endpoint.',
      tag,
      auth: 'account',
      response: { status: 200, schema: EndpointOut },
      errors: [404],
    },
    async (ctx) => {
      const ep = await found(ctx, await account(ctx));
      return endpointOut(ep, (await healthOf(deps.db, [ep.id])).get(ep.id));
    },
  );

  defineRoute(
    router,
    {
      method: 'patch',
      path: '/v1/endpoints/:id',
      operationId: 'updateEndpoint',
      example: { body: { enabled: false }, response: { ...ENDPOINT_EXAMPLE, enabled: false } },
      summary: 'Change URL, event types, description, enabled, or the send limits (rateLimitPerSecond, maxInFlight; null removes one). Disabling cancels pending deliveries.',
      tag,
      auth: 'account',
      body: EndpointPatchIn,
      check: checkUrl,
      response: { status: 200, schema: EndpointOut },
      errors: [402, 404],
    },
    async (ctx, { body }) => {
      const a = await account(ctx);
      paid(a);
      const before = await found(ctx, a);
      const ep = await updateEndpoint(deps.db, a.id, before.id, body);
      if (!ep) throw ApiError.notFound('endpoint');
      if (before.enabled && !ep.enabled) await cancelEndpointDeliveries(deps, ep.id, 'endpoint disabled');
      deps.dispatcher?.kickOperational(); // endpoint.updated (and endpoint.disabled)
      return endpointOut(ep, (await healthOf(deps.db, [ep.id])).get(ep.id));
    },
  );

  defineRoute(
    router,
    {
      method: 'delete',
      path: '/v1/endpoints/:id',
      operationId: 'deleteEndpoint',
      example: {},
      summary: 'Delete an endpoint; its pending deliveries end cancelled. Its delivery log stays readable.',
      tag,
      auth: 'account',
      response: { status: 204 },
      errors: [404],
    },
    async (ctx) => {
      const a = await account(ctx);
      const ep = await found(ctx, a);
      await softDeleteEndpoint(deps.db, a.id, ep.id);
      await cancelEndpointDeliveries(deps, ep.id, 'endpoint deleted');
      deps.dispatcher?.kickOperational(); // endpoint.deleted
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/endpoints/:id/secret',
      operationId: 'getEndpointSecret',
      example: { response: { secret: SECRET_EXAMPLE } },
      summary: 'Reveal the signing secret.',
      tag,
      auth: 'account',
      response: { status: 200, schema: SecretOut },
      errors: [404],
    },
    async (ctx) => {
      return { secret: (await found(ctx, await account(ctx))).secret };
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/endpoints/:id/secret/rotate',
      operationId: 'rotateEndpointSecret',
      example: { response: { secret: 'whsec_Q2h4bmdlZF9zZWNyZXRfZXhhbXBsZQ1' } },
      summary: 'Issue a new signing secret; the previous one keeps signing for SECRET_ROTATION_OVERLAP (24 h).',
      tag,
      auth: 'account',
      response: { status: 200, schema: SecretOut },
      errors: [402, 404],
    },
    async (ctx) => {
      const a = await account(ctx);
      paid(a);
      const ep = await rotateSecret(deps.db, a.id, (await found(ctx, a)).id, deps.cfg.SECRET_ROTATION_OVERLAP);
      if (!ep) throw ApiError.notFound('endpoint');
      return { secret: ep.secret };
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/endpoints/:id/test',
      operationId: 'sendTestEvent',
      example: { body: { eventType: 'reward_unlocked' }, response: { deliveryId: 'dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R' } },
      summary: 'Send a sample event of a type to this endpoint only, through the normal delivery path.',
      tag,
      auth: 'account',
      body: TestIn,
      response: { status: 202, schema: ResendOut },
      errors: [402, 404, 409],
      limit: 'send',
    },
    async (ctx, { body }) => {
      const a = await account(ctx);
      paid(a);
      const ep = await found(ctx, a);
      if (!ep.enabled) throw new ApiError(409, 'endpoint_disabled', 'Enable the endpoint before sending a test event.');
      const eventType = body.eventType ?? ep.event_types[0];
      const published = await publishEvent(
        { db: deps.db, dispatcher: deps.dispatcher, maxPayloadBytes: deps.cfg.MAX_PAYLOAD_BYTES },
        { accountId: a.id, eventType, data: EVENT_CATALOG[eventType].example },
        { onlyEndpointId: ep.id, isTest: true },
      );
      return { deliveryId: published.deliveries[0].id };
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/endpoints/:id/recover',
      operationId: 'recoverEndpoint',
      example: {
        body: { since: '2025-02-08T00:00:00Z', limit: 1000 },
        response: { deliveryIds: ['dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R'], recovered: { undeliverable: 1, cancelled: 0, missing: 0 }, more: false },
      },
      summary: `Recover what the endpoint lost since a time, oldest first, at most \`limit\` (default ${RECOVER_LIMIT}) per call: its undeliverable deliveries and those cancelled by auto-disable, a disable, a 410 or a downgrade are resent (same webhook-id), and events it never got (published while it was disabled, Svix's "replay missing") are delivered. Idempotent: a repeated call brings back nothing twice; \`more\` says whether to call again.`,
      tag,
      auth: 'account',
      body: RecoverIn,
      response: { status: 202, schema: RecoveredOut },
      errors: [402, 404, 409],
      limit: 'send',
    },
    async (ctx, { body }) => {
      const a = await account(ctx);
      paid(a);
      const ep = await found(ctx, a);
      if (!ep.enabled) throw new ApiError(409, 'endpoint_disabled', 'Enable the endpoint before recovering its deliveries.');
      return (await recoverEndpoint(deps, ep, { since: new Date(body.since), limit: body.limit ?? RECOVER_LIMIT, include: body.include })) satisfies z.infer<typeof RecoveredOut>;
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/endpoints/:id/retry',
      operationId: 'retryEndpoint',
      example: { response: { deliveryIds: ['dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R'] } },
      summary: `Retry pending now: every pending delivery of this endpoint (held ones included) is attempted now instead of at its next back-off slot, oldest first; while its circuit is open the first request is the probe, and only its success sends the rest. A pause the receiver asked for (429, or 503 with Retry-After) ends too. Answers the first ${RECOVER_LIMIT} pending ids.`,
      tag,
      auth: 'account',
      response: { status: 202, schema: RecoverOut },
      errors: [402, 404, 409],
      limit: 'send',
    },
    async (ctx) => {
      const a = await account(ctx);
      paid(a);
      const ep = await found(ctx, a);
      if (!ep.enabled) throw new ApiError(409, 'endpoint_disabled', 'Enable the endpoint before retrying its deliveries.');
      const ids = await pendingOfEndpoint(deps.db, ep.id, RECOVER_LIMIT);
      await endThrottle(deps.db, ep.id); // "fixed it": a 429 / Retry-After pause is a wait to skip too
      if (ids.length) await deps.dispatcher.wakeDrain({ endpointId: ep.id, accountId: a.id, reason: 'retry-endpoint', forceProbe: true });
      return { deliveryIds: ids } satisfies z.infer<typeof RecoverOut>;
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/endpoints/:id/stats',
      operationId: 'getEndpointStats',
      example: { response: STATS_EXAMPLE },
      summary:
        'Attempts, successes, failures by class, success rate and p50/p95 response time of one endpoint over a window, in time buckets (read from a per-minute rollup of the attempt log).',
      tag,
      auth: 'account',
      query: EndpointStatsQuery,
      response: { status: 200, schema: EndpointStatsOut },
      errors: [404],
    },
    async (ctx, { query }) => {
      const ep = await found(ctx, await account(ctx));
      const s = await endpointStats(deps.db, ep.id, query.window);
      const iso = (d: Date) => d.toISOString();
      return {
        ...s,
        from: iso(s.from),
        to: iso(s.to),
        buckets: s.buckets.map((b) => ({ ...b, start: iso(b.start) })),
        lastError: s.lastError && { at: iso(s.lastError.at), error: s.lastError.error },
      } satisfies z.infer<typeof EndpointStatsOut>;
    },
  );

  return router;
}

const NO_FAILURES = { '3xx': 0, '4xx': 0, '5xx': 0, timeout: 0, network: 0, refused: 0 };
const STATS_EXAMPLE: z.infer<typeof EndpointStatsOut> = {
  window: '1h',
  bucketSeconds: 60,
  from: '2025-02-09T02:01:00.000Z',
  to: '2025-02-09T03:01:00.000Z',
  totals: { attempts: 120, succeeded: 114, failed: 6, failedBy: { ...NO_FAILURES, '5xx': 4, timeout: 2 }, successRate: 0.95, p50Ms: 84, p95Ms: 410 },
  buckets: [
    { start: '2025-02-09T02:01:00.000Z', attempts: 2, succeeded: 2, failed: 0, failedBy: NO_FAILURES, successRate: 1, p50Ms: 81, p95Ms: 96 },
    { start: '2025-02-09T02:02:00.000Z', attempts: 0, succeeded: 0, failed: 0, failedBy: NO_FAILURES, successRate: null, p50Ms: null, p95Ms: null },
  ],
  lastError: { at: '2025-02-09T02:47:12.301Z', error: 'HTTP 503' },
};
