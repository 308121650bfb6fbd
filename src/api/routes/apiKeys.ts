import Router from '@koa/router';
import { createApiKey, listApiKeys, revokeApiKey } from '../../db/apiKeys';
import type { ApiDeps } from '../context';
import { actingAccount } from '../auth';
import { ApiError } from '../errors';
import { defineRoute } from '../route';
import { ApiKeyCreatedOut, ApiKeyIn, ApiKeyListOut } from '../schemas';
import { apiKeyOut } from '../mappers';

const EXAMPLE = { id: 'key_01JM6Z6C3D5B7N9M1Q3W5E7R9T', name: 'CRM sync', prefix: 'rrk_Xq3v9TbW', createdAt: '2026-11-27T08:00:00.000Z', lastUsedAt: null };

/** An account's API keys: several, named, listed by prefix only, revocable at once. */
export function apiKeysRouter(deps: ApiDeps): Router {
  const router = new Router();
  const tag = 'API keys';

  defineRoute(
    router,
    {
      method: 'post',
      path: '/v1/api-keys',
      operationId: 'createApiKey',
      example: { body: { name: 'CRM sync' }, response: { ...EXAMPLE, key: 'rrk_Xq3v9TbWm2c8Lr5Zp0Hd7Ns4Jy1Kf6Ge3Uw9Ta2Vb' } },
      summary: 'Issue a new API key for the account. The key is shown once; only its hash is stored.',
      tag,
      auth: 'account',
      body: ApiKeyIn,
      response: { status: 201, schema: ApiKeyCreatedOut },
    },
    async (ctx, { body }) => {
      const a = await actingAccount(ctx, deps.db);
      const { row, key } = await createApiKey(deps.db, a.id, body.name);
      return { ...apiKeyOut(row), key };
    },
  );

  defineRoute(
    router,
    {
      method: 'get',
      path: '/v1/api-keys',
      operationId: 'listApiKeys',
      example: { response: { data: [EXAMPLE] } },
      summary: "List the account's live API keys (prefix only, never the key).",
      tag,
      auth: 'account',
      response: { status: 200, schema: ApiKeyListOut },
    },
    async (ctx) => {
      const a = await actingAccount(ctx, deps.db);
      return { data: (await listApiKeys(deps.db, a.id)).map(apiKeyOut) };
    },
  );

  defineRoute(
    router,
    {
      method: 'delete',
      path: '/v1/api-keys/:id',
      operationId: 'revokeApiKey',
      example: {},
      summary: 'Revoke an API key: it answers 401 from now on (the calling key may revoke itself).',
      tag,
      auth: 'account',
      response: { status: 204 },
      errors: [404],
    },
    async (ctx) => {
      const a = await actingAccount(ctx, deps.db);
      if (!(await revokeApiKey(deps.db, a.id, ctx.params.id))) throw ApiError.notFound('API key');
    },
  );

  return router;
}
