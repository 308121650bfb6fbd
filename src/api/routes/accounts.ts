import Router from '@koa/router';
import { createAccount, getAccount, updateAccount } from '../../db/accounts';
import { listEndpoints } from '../../db/endpoints';
import { cancelEndpointDeliveries } from '../../services/deliveryControl';
import type { ApiDeps } from '../context';
import { ApiError } from '../errors';
import { accountOut } from '../mappers';
import { defineRoute } from '../route';
import { AccountCreatedOut, AccountIn, AccountOut, AccountPatchIn } from '../schemas';

export function accountsRouter(deps: ApiDeps): Router {
  const router = new Router();
  const tag = 'Accounts';

  defineRoute(router, { method: 'post', path: '/v1/accounts', summary: 'Create a customer account (admin). The API key is shown once.', tag, auth: 'admin', body: AccountIn, response: { status: 201, schema: AccountCreatedOut } }, async (_ctx, { body }) => {
    const { account, apiKey } = await deps.db.transaction((tx) => createAccount(tx, body));
    return { ...accountOut(account), apiKey };
  });

  defineRoute(router, { method: 'get', path: '/v1/accounts/:id', summary: 'Read an account (admin).', tag, auth: 'admin', response: { status: 200, schema: AccountOut }, errors: [404] }, async (ctx) => {
    const account = await getAccount(deps.db, ctx.params.id);
    if (!account) throw ApiError.notFound('account');
    return accountOut(account);
  });

  defineRoute(router, { method: 'patch', path: '/v1/accounts/:id', summary: 'Change an account\'s name or plan (admin). Moving to free cancels pending deliveries; endpoints and history stay.', tag, auth: 'admin', body: AccountPatchIn, response: { status: 200, schema: AccountOut }, errors: [404] }, async (ctx, { body }) => {
    const before = await getAccount(deps.db, ctx.params.id);
    if (!before) throw ApiError.notFound('account');
    const account = (await updateAccount(deps.db, before.id, body))!;
    // Downgraded: nothing more is delivered; settings and history stay, and return with the paid plan.
    if (before.plan === 'paid' && account.plan === 'free') {
      for (const ep of await listEndpoints(deps.db, account.id)) await cancelEndpointDeliveries(deps, ep.id, 'account moved to the free plan');
    }
    return accountOut(account);
  });

  return router;
}
