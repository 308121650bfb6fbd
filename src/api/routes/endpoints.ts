import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AccountRow } from '../../db/accounts';
import { createEndpoint, getEndpoint, listEndpoints, rotateSecret, softDeleteEndpoint, updateEndpoint } from '../../db/endpoints';
import { normaliseEndpointUrl } from '../../domain/endpointUrl';
import { EVENT_CATALOG } from '../../domain/eventCatalog';
import { cancelEndpointDeliveries, resendDelivery } from '../../services/deliveryControl';
import { publishEvent } from '../../services/publishEvent';
import type { ApiDeps } from '../context';
import { actingAccount } from '../auth';
import { ApiError, type FieldError } from '../errors';
import { endpointOut } from '../mappers';
import { defineRoute } from '../route';
import { EndpointIn, EndpointListOut, EndpointOut, EndpointPatchIn, EndpointWithSecretOut, RecoverIn, RecoverOut, ResendOut, SecretOut, TestIn } from '../schemas';

const RECOVER_LIMIT = 1000;

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
  /** The destination policy needs DNS: checked with the schema, so one 400 names every bad field. */
  const checkUrl = async (raw: unknown, schemaErrors: FieldError[]): Promise<FieldError[]> => {
    const typed = (raw as { url?: unknown } | null)?.url;
    if (typeof typed !== 'string' || schemaErrors.some((e) => e.path === 'url')) return [];
    const n = normaliseEndpointUrl(typed);
    const problem = 'href' in n ? await deps.guard.check(n.href) : undefined;
    return problem ? [{ path: 'url', message: problem }] : [];
  };

  defineRoute(router, { method: 'post', path: '/v1/endpoints', summary: 'Add a webhook endpoint. The response carries its signing secret.', tag, auth: 'account', body: EndpointIn, check: checkUrl, response: { status: 201, schema: EndpointWithSecretOut }, errors: [402] }, async (ctx, { body }) => {
    const a = await account(ctx);
    paid(a);
    const ep = await createEndpoint(deps.db, a.id, body);
    return { ...endpointOut(ep), secret: ep.secret };
  });

  defineRoute(router, { method: 'get', path: '/v1/endpoints', summary: 'List the account\'s endpoints (secrets not included).', tag, auth: 'account', response: { status: 200, schema: EndpointListOut } }, async (ctx) => {
    const a = await account(ctx);
    return { data: (await listEndpoints(deps.db, a.id)).map(endpointOut) };
  });

  defineRoute(router, { method: 'get', path: '/v1/endpoints/:id', summary: 'Read one endpoint.', tag, auth: 'account', response: { status: 200, schema: EndpointOut }, errors: [404] }, async (ctx) => {
    return endpointOut(await found(ctx, await account(ctx)));
  });

  defineRoute(router, { method: 'patch', path: '/v1/endpoints/:id', summary: 'Change URL, event types, description or enabled. Disabling cancels pending deliveries.', tag, auth: 'account', body: EndpointPatchIn, check: checkUrl, response: { status: 200, schema: EndpointOut }, errors: [402, 404] }, async (ctx, { body }) => {
    const a = await account(ctx);
    paid(a);
    const before = await found(ctx, a);
    const ep = await updateEndpoint(deps.db, a.id, before.id, body);
    if (!ep) throw ApiError.notFound('endpoint');
    if (before.enabled && !ep.enabled) await cancelEndpointDeliveries(deps, ep.id, 'endpoint disabled');
    return endpointOut(ep);
  });

  defineRoute(router, { method: 'delete', path: '/v1/endpoints/:id', summary: 'Delete an endpoint; its pending deliveries end cancelled. Its delivery log stays readable.', tag, auth: 'account', response: { status: 204 }, errors: [404] }, async (ctx) => {
    const a = await account(ctx);
    const ep = await found(ctx, a);
    await softDeleteEndpoint(deps.db, a.id, ep.id);
    await cancelEndpointDeliveries(deps, ep.id, 'endpoint deleted');
  });

  defineRoute(router, { method: 'get', path: '/v1/endpoints/:id/secret', summary: 'Reveal the signing secret.', tag, auth: 'account', response: { status: 200, schema: SecretOut }, errors: [404] }, async (ctx) => {
    return { secret: (await found(ctx, await account(ctx))).secret };
  });

  defineRoute(router, { method: 'post', path: '/v1/endpoints/:id/secret/rotate', summary: 'Issue a new signing secret; the previous one keeps signing for SECRET_ROTATION_OVERLAP (24 h).', tag, auth: 'account', response: { status: 200, schema: SecretOut }, errors: [402, 404] }, async (ctx) => {
    const a = await account(ctx);
    paid(a);
    const ep = await rotateSecret(deps.db, a.id, (await found(ctx, a)).id, deps.cfg.SECRET_ROTATION_OVERLAP);
    if (!ep) throw ApiError.notFound('endpoint');
    return { secret: ep.secret };
  });

  defineRoute(router, { method: 'post', path: '/v1/endpoints/:id/test', summary: 'Send a sample event of a type to this endpoint only, through the normal delivery path.', tag, auth: 'account', body: TestIn, response: { status: 202, schema: ResendOut }, errors: [402, 404, 409] }, async (ctx, { body }) => {
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
  });

  defineRoute(router, { method: 'post', path: '/v1/endpoints/:id/recover', summary: `Resend every undeliverable delivery of this endpoint created since a time (at most ${RECOVER_LIMIT}).`, tag, auth: 'account', body: RecoverIn, response: { status: 202, schema: RecoverOut }, errors: [402, 404, 409] }, async (ctx, { body }) => {
    const a = await account(ctx);
    paid(a);
    const ep = await found(ctx, a);
    if (!ep.enabled) throw new ApiError(409, 'endpoint_disabled', 'Enable the endpoint before recovering its deliveries.');
    const rows = await deps.db.query<{ id: string }>(
      `select id from deliveries where endpoint_id = $1 and status = 'undeliverable' and created_at >= $2 order by id limit $3`,
      [ep.id, new Date(body.since), RECOVER_LIMIT],
    );
    const ids: string[] = [];
    for (const row of rows) if (await resendDelivery(deps, a.id, row.id)) ids.push(row.id);
    return { deliveryIds: ids } satisfies z.infer<typeof RecoverOut>;
  });

  return router;
}
