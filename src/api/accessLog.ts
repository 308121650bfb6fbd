import type { Middleware } from 'koa';
import { randomUUID } from 'node:crypto';
import { childLogger, type Logger } from '../logger';
import type { Principal } from './auth';

/** Probes and scrapes: logged at debug, so a scraper every 15 s does not fill the log. */
const QUIET = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * A request id (the caller's `X-Request-Id` when it looks like one, else a new UUID), answered in
 * `X-Request-Id` and carried by `ctx.state.log`; one `api.request` line per request, after it.
 * The path is logged without its query string; credentials travel in headers, never logged.
 */
export function accessLog(log: Logger): Middleware {
  return async (ctx, next) => {
    const started = performance.now();
    const incoming = ctx.get('x-request-id');
    const requestId = /^[\w.:-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = childLogger(log, { requestId });
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const p = ctx.state.principal as Principal | undefined;
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const fields = {
        requestId,
        method: ctx.method,
        path: ctx.path,
        route: typeof route === 'string' ? route : null,
        status: ctx.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        principal: p?.kind ?? null,
        accountId: p?.kind === 'account' ? p.accountId : null,
      };
      if (QUIET.has(ctx.path)) log.debug('api.request', fields);
      else log.info('api.request', fields);
    }
  };
}
