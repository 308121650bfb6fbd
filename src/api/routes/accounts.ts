import Router from '@koa/router';
import { createAccount, getAccount, updateAccount } from '../../db/accounts';
import { listEndpoints } from '../../db/endpoints';
import { cancelEndpointDeliveries } from '../../services/deliveryControl';
import type { ApiDeps } from '../context';
import { ApiError } from '../errors';
import { accountOut } from '../mappers';
import { defineRoute } from '../route';
import { signPortalToken, type PortalScope } from '../../domain/portalToken';
import { actingAccount, credentialsOf, principal } from '../auth';
import { revokeAllPortalLinks, revokePortalLink } from '../../db/portalLinks';
import { listeningOrigin } from '../origin';
import { AccountCreatedOut, AccountIn, AccountOut, AccountPatchIn, MyAccountOut, PortalLinkIn, PortalLinkOut } from '../schemas';

const ACCOUNT_EXAMPLE = { id: 'acc_01JM6Z3K9Q8W2E4R6T8Y0U2I4O', name: 'Acme', plan: 'paid', createdAt: '2025-02-09T03:00:28.002Z', updatedAt: '2025-02-09T03:00:28.002Z' };

export function accountsRouter(deps: ApiDeps): Router {
  const router = new Router();
  const tag = 'Accounts';

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/accounts',
      operationId: 'createAccount',
      example: { body: { name: 'Acme', plan: 'paid' }, response: { ...ACCOUNT_EXAMPLE, apiKey: 'rk_live_5f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6' } },
      summary: 'Create a customer account (admin). The API key is shown once.',
      tag,
      auth: 'admin',
      body: AccountIn,
      response: { status: 201, schema: AccountCreatedOut },
    },
    async (_ctx, { body }) => {
      const { account, apiKey } = await deps.db.transaction((tx) => createAccount(tx, body));
      return { ...accountOut(account), apiKey };
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/accounts/:id',
      operationId: 'getAccount',
      example: { response: ACCOUNT_EXAMPLE },
      summary: 'Read an account (admin).',
      tag,
      auth: 'admin',
      response: { status: 200, schema: AccountOut },
      errors: [404],
    },
    async (ctx) => {
      const account = await getAccount(deps.db, ctx.params.id);
      if (!account) throw ApiError.notFound('account');
      return accountOut(account);
    },
  );

  defineRoute(
    router,
    {
      method: 'patch',
      path: '/v1/accounts/:id',
      operationId: 'updateAccount',
      example: { body: { plan: 'free' }, response: { ...ACCOUNT_EXAMPLE, plan: 'free' } },
      summary: "Change an account's name or plan (admin). Moving to free cancels pending deliveries; endpoints and history stay.",
      tag,
      auth: 'admin',
      body: AccountPatchIn,
      response: { status: 200, schema: AccountOut },
      errors: [404],
    },
    async (ctx, { body }) => {
      const before = await getAccount(deps.db, ctx.params.id);
      if (!before) throw ApiError.notFound('account');
      const account = (await updateAccount(deps.db, before.id, body))!;
      // Downgraded: nothing more is delivered; settings and history stay, and return with the paid plan.
      if (before.plan === 'paid' && account.plan === 'free') {
        for (const ep of await listEndpoints(deps.db, account.id)) await cancelEndpointDeliveries(deps, ep.id, 'account moved to the free plan');
      }
      return accountOut(account);
    },
  );

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/accounts/:id/portal-links',
      operationId: 'createPortalLink',
      example: {
        body: { ttlSeconds: 3600, scope: 'manage' },
        response: { id: 'pl_Jr4vT8kQ2mXw9LbZ', url: 'https://webhooks.example.com/portal#token=rrp_…', expiresAt: '2025-02-09T04:00:28.002Z', scope: 'manage' },
      },
      summary: 'A short-lived signed link to the webhook settings page of this account only (admin); `scope: read` makes it read-only.',
      tag,
      auth: 'admin',
      body: PortalLinkIn,
      response: { status: 201, schema: PortalLinkOut },
      errors: [404],
    },
    async (ctx, { body }) => {
      const account = await getAccount(deps.db, ctx.params.id);
      if (!account) throw ApiError.notFound('account');
      return portalLink(deps, account.id, body, listeningOrigin(ctx.req.socket));
    },
  );

  defineRoute(
    router,
    {
      method: 'delete',
      path: '/v1/accounts/:id/portal-links',
      operationId: 'revokeAllPortalLinks',
      example: {},
      summary: 'Revoke every portal link of this account issued so far (admin); links made afterwards work.',
      tag,
      auth: 'admin',
      response: { status: 204 },
      errors: [404],
    },
    async (ctx) => {
      if (!(await revokeAllPortalLinks(deps.db, ctx.params.id))) throw ApiError.notFound('account');
    },
  );

  defineRoute(
    router,
    {
      method: 'delete',
      path: '/v1/accounts/:id/portal-links/:linkId',
      operationId: 'revokePortalLink',
      example: { params: { linkId: 'pl_Jr4vT8kQ2mXw9LbZ' } },
      summary: 'Revoke one portal link (admin): its `id` from the answer that created it.',
      tag,
      auth: 'admin',
      response: { status: 204 },
      errors: [404],
    },
    async (ctx) => {
      const account = await getAccount(deps.db, ctx.params.id);
      if (!account) throw ApiError.notFound('account');
      // Remembered as long as any link can live (7 days), so the row outlives the link.
      await revokePortalLink(deps.db, account.id, ctx.params.linkId, new Date(Date.now() + 7 * 86_400_000));
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/account',
      operationId: 'getMyAccount',
      example: { response: { id: ACCOUNT_EXAMPLE.id, name: 'Acme', plan: 'paid', access: 'manage' } },
      summary: 'The calling account (account key or portal link).',
      tag,
      auth: 'account',
      response: { status: 200, schema: MyAccountOut },
      errors: [404],
    },
    async (ctx) => {
      const account = await actingAccount(ctx, deps.db);
      const p = principal(ctx);
      return { id: account.id, name: account.name, plan: account.plan, access: p.kind === 'account' && p.readOnly ? ('read' as const) : ('manage' as const) };
    },
  );

  return router;
}

/**
 * Signs a portal link; the token rides in the URL fragment, which browsers never send to servers.
 * The link's origin is PUBLIC_URL, else `origin`: the API's own listening address, never a
 * client-supplied Host header.
 */
export function portalLink(
  deps: Pick<ApiDeps, 'cfg' | 'adminToken' | 'portalKeys'>,
  accountId: string,
  opts: { ttlSeconds?: number; scope?: PortalScope },
  origin: string,
): { id: string; url: string; expiresAt: string; scope: PortalScope } {
  // The operator's PORTAL_LINK_MAX_TTL bounds every link, whatever was asked for.
  const ttlMs = Math.min(opts.ttlSeconds ? opts.ttlSeconds * 1000 : deps.cfg.PORTAL_LINK_TTL, deps.cfg.PORTAL_LINK_MAX_TTL);
  const expiresAtMs = Date.now() + ttlMs;
  const scope = opts.scope ?? 'manage';
  const { token, linkId } = signPortalToken(credentialsOf(deps).portalKeys, accountId, expiresAtMs, { scope });
  const base = (deps.cfg.PUBLIC_URL ?? origin).replace(/\/$/, '');
  return { id: linkId, url: `${base}/portal#token=${token}`, expiresAt: new Date(expiresAtMs).toISOString(), scope };
}
