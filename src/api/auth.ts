import type { Context, Middleware } from 'koa';
import type { Queryable } from '../db/database';
import { getAccount, tokensEqual, type AccountRow } from '../db/accounts';
import { accountIdForApiKey } from '../db/apiKeys';
import { PORTAL_TOKEN_PREFIX, portalSigningKey, verifyPortalToken } from '../domain/portalToken';
import { ApiError } from './errors';
import { IdParam } from './schemas';

export type Principal = { kind: 'admin' } | { kind: 'account'; accountId: string };

/** Resolves the bearer token to a principal, or 401. Routes decide what each principal may do. */
export function authenticate(db: Queryable, adminToken: string): Middleware {
  const portalKey = portalSigningKey(adminToken);
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new ApiError(401, 'unauthorized', 'Send an Authorization: Bearer <token> header.');
    const token = match[1];
    if (tokensEqual(token, adminToken)) {
      ctx.state.principal = { kind: 'admin' } satisfies Principal;
    } else if (token.startsWith(PORTAL_TOKEN_PREFIX)) {
      const verdict = verifyPortalToken(portalKey, token);
      if (!verdict.ok) throw new ApiError(401, 'unauthorized', verdict.reason === 'expired' ? 'The portal link has expired.' : 'The token is not valid.');
      ctx.state.principal = { kind: 'account', accountId: verdict.accountId } satisfies Principal;
    } else {
      const accountId = await accountIdForApiKey(db, token);
      if (!accountId) throw new ApiError(401, 'unauthorized', 'The token is not valid.');
      ctx.state.principal = { kind: 'account', accountId } satisfies Principal;
    }
    return next();
  };
}

export function principal(ctx: Context): Principal {
  return ctx.state.principal as Principal;
}

export function requireAdmin(ctx: Context): void {
  if (principal(ctx).kind !== 'admin') throw new ApiError(403, 'forbidden', 'This route needs the platform admin token.');
}

/**
 * The account a request acts for: the key's own account, or for the admin the `accountId`
 * query parameter. An unknown account reads as 404, like any resource of another account.
 */
export async function actingAccount(ctx: Context, db: Queryable): Promise<AccountRow> {
  const p = principal(ctx);
  const q = ctx.query.accountId;
  // Checked for every caller (an account key's is ignored), as the OpenAPI document says.
  if (q !== undefined && (typeof q !== 'string' || !IdParam.safeParse(q).success)) {
    throw ApiError.validation([{ path: 'query.accountId', message: 'must be one account id (1 to 64 characters, no NUL)' }]);
  }
  let accountId: string;
  if (p.kind === 'account') accountId = p.accountId;
  else {
    if (!q) throw ApiError.validation([{ path: 'query.accountId', message: 'the admin token must name the account with ?accountId=' }]);
    accountId = q;
  }
  const account = await getAccount(db, accountId);
  if (!account) throw ApiError.notFound('account');
  return account;
}
