import type { Context, Middleware } from 'koa';
import type { Queryable } from '../db/database';
import { getAccount, tokensEqual, type AccountRow } from '../db/accounts';
import { liveApiKey } from '../db/apiKeys';
import { portalLinkRevoked } from '../db/portalLinks';
import { PORTAL_TOKEN_PREFIX, PortalKeyRing, portalSigningKey, verifyPortalToken } from '../domain/portalToken';
import type { ApiDeps } from './context';
import { ApiError } from './errors';
import type { RateLimits } from './rateLimits';
import { IdParam } from './schemas';

/** An account principal from a read-only portal link may look but not change anything. */
export type Principal = { kind: 'admin' } | { kind: 'metrics' } | { kind: 'account'; accountId: string; readOnly?: boolean };

/** What the API accepts as credentials (see the README's Credentials). */
export interface Credentials {
  /** The current admin token first, then earlier ones still accepted during a rotation. */
  adminTokens: string[];
  portalKeys: PortalKeyRing;
  /** May read /metrics and nothing else. */
  metricsToken?: string;
}

/** The credentials the API accepts, from its dependencies and configuration. */
export function credentialsOf(deps: Pick<ApiDeps, 'adminToken' | 'portalKeys' | 'cfg'>): Credentials {
  return {
    adminTokens: [deps.adminToken, ...deps.cfg.ADMIN_TOKENS_PREVIOUS],
    portalKeys: deps.portalKeys ?? new PortalKeyRing([portalSigningKey(deps.adminToken)]),
    metricsToken: deps.cfg.METRICS_TOKEN,
  };
}

/**
 * Resolves the bearer token to a principal, or 401, within the abuse limits: an address over its
 * budget of failed authentications gets 429 before its token is looked at, and each credential
 * takes one request from its own budget (the admin token from RATE_LIMIT_ADMIN).
 */
export function authenticate(db: Queryable, creds: Credentials, limits?: RateLimits): Middleware {
  return async (ctx, next) => {
    limits?.refuseBlockedAddress(ctx);
    let p: Principal;
    let credential: string;
    try {
      ({ principal: p, credential } = await resolveToken(db, creds, ctx.get('authorization')));
    } catch (err) {
      if (limits && err instanceof ApiError && err.status === 401) await limits.authFailed(ctx);
      throw err;
    }
    ctx.state.principal = p;
    if (limits) await limits.take(ctx, p.kind === 'admin' ? 'admin' : 'api', credential);
    return next();
  };
}

/** The principal of an Authorization header, and the credential it came with (what its rate limit is keyed by). */
async function resolveToken(db: Queryable, creds: Credentials, header: string): Promise<{ principal: Principal; credential: string }> {
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new ApiError(401, 'unauthorized', 'Send an Authorization: Bearer <token> header.');
  const token = match[1];
  // Every candidate is compared (constant time each), so timing tells nothing about which matched.
  const admin = creds.adminTokens.map((t) => tokensEqual(token, t)).includes(true);
  if (admin) return { principal: { kind: 'admin' }, credential: 'admin' };
  if (creds.metricsToken && tokensEqual(token, creds.metricsToken)) return { principal: { kind: 'metrics' }, credential: 'metrics' };
  if (token.startsWith(PORTAL_TOKEN_PREFIX)) {
    const verdict = verifyPortalToken(creds.portalKeys, token);
    if (!verdict.ok) throw new ApiError(401, 'unauthorized', verdict.reason === 'expired' ? 'The portal link has expired.' : 'The token is not valid.');
    if (await portalLinkRevoked(db, verdict.accountId, verdict.linkId, verdict.issuedAtMs)) throw new ApiError(401, 'unauthorized', 'The portal link was revoked.');
    return {
      principal: { kind: 'account', accountId: verdict.accountId, readOnly: verdict.scope === 'read' },
      credential: `portal:${verdict.linkId || verdict.accountId}`,
    };
  }
  const key = await liveApiKey(db, token);
  if (!key) throw new ApiError(401, 'unauthorized', 'The token is not valid.');
  return { principal: { kind: 'account', accountId: key.accountId }, credential: `key:${key.id}` };
}

export function principal(ctx: Context): Principal {
  return ctx.state.principal as Principal;
}

export function requireAdmin(ctx: Context): void {
  if (principal(ctx).kind !== 'admin') throw new ApiError(403, 'forbidden', 'This route needs the platform admin token.');
}

/** Account routes: an account's key or portal link, or the admin acting for one; a read-only link only reads. */
export function requireAccountAccess(ctx: Context, method: string): void {
  const p = principal(ctx);
  if (p.kind === 'metrics') throw new ApiError(403, 'forbidden', 'The metrics token may only read /metrics.');
  if (p.kind === 'account' && p.readOnly && method !== 'get') throw new ApiError(403, 'read_only', 'This portal link is read-only.');
}

/**
 * The account a request acts for: the key's own account, or for the admin the `accountId`
 * query parameter. An unknown account reads as 404, like any resource of another account.
 */
export async function actingAccount(ctx: Context, db: Queryable): Promise<AccountRow> {
  const p = principal(ctx);
  if (p.kind === 'metrics') throw new ApiError(403, 'forbidden', 'The metrics token may only read /metrics.');
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
