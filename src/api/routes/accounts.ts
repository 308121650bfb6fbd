import Router from '@koa/router';
import { createAccount, getAccount, updateAccount } from '../../db/accounts';
import type { ApiDeps } from '../context';
import { requireAdmin } from '../auth';
import { ApiError } from '../errors';
import { accountOut } from '../mappers';
import { defineRoute } from '../route';
import { AccountCreatedOut, AccountIn, AccountOut, AccountPatchIn } from '../schemas';

export function accountsRouter(deps: ApiDeps): Router {
  const router = new Router();
  const tag = 'Accounts';

  defineRoute(router, { method: 'post', path: '/v1/accounts', summary: 'Create a customer account (admin). The API key is shown once.', tag, auth: 'admin', body: AccountIn, response: { status: 201, schema: AccountCreatedOut } }, async (ctx, { body }) => {
    requireAdmin(ctx);
    const { account, apiKey } = await deps.db.transaction((tx) => createAccount(tx, body));
    return { ...accountOut(account), apiKey };
  });

  defineRoute(router, { method: 'get', path: '/v1/accounts/:id', summary: 'Read an account (admin).', tag, auth: 'admin', response: { status: 200, schema: AccountOut }, errors: [404] }, async (ctx) => {
    requireAdmin(ctx);
    const account = await getAccount(deps.db, ctx.params.id);
    if (!account) throw ApiError.notFound('account');
    return accountOut(account);
  });

  defineRoute(router, { method: 'patch', path: '/v1/accounts/:id', summary: 'Change an account\'s name or plan (admin).', tag, auth: 'admin', body: AccountPatchIn, response: { status: 200, schema: AccountOut }, errors: [404] }, async (ctx, { body }) => {
    requireAdmin(ctx);
    const account = await updateAccount(deps.db, ctx.params.id, body);
    if (!account) throw ApiError.notFound('account');
    return accountOut(account);
  });

  return router;
}
