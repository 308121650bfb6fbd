import Router from '@koa/router';
import Koa from 'koa';
import { traceRequests } from '../tracing';
import { accessLog } from './accessLog';
import type { ApiDeps } from './context';
import { authenticate, credentialsOf, principal } from './auth';
import { ApiError, errorMiddleware } from './errors';
import { jsonBody } from './jsonBody';
import { openApiDocument } from './openapi';
import { RateLimits } from './rateLimits';
import { portalRouter } from './portalPage';
import { accountsRouter } from './routes/accounts';
import { apiKeysRouter } from './routes/apiKeys';
import { deliveriesRouter } from './routes/deliveries';
import { endpointsRouter } from './routes/endpoints';
import { eventsRouter } from './routes/events';
import { eventTypesRouter } from './routes/eventTypes';
import { operationalEndpointsRouter } from './routes/operationalEndpoints';

export function createApp(deps: ApiDeps): Koa {
  const creds = credentialsOf(deps);
  // Shared through Postgres by every API process; in memory on PGlite, which serves one process.
  const limits = deps.rateLimits ?? new RateLimits(deps.cfg, deps.db?.kind === 'postgres' && !deps.db.soleClient ? deps.db : undefined);
  const app = new Koa();
  app.proxy = false;
  app.use(traceRequests());
  app.use(accessLog(deps.log));
  app.use(errorMiddleware(deps.log));
  app.use(async (ctx, next) => {
    await next();
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Content-Type-Options', 'nosniff');
  });

  const open = new Router();
  open.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  open.get('/readyz', async (ctx) => {
    const [db, temporal] = await Promise.all([
      deps.db.query('select 1').then(
        () => true,
        () => false,
      ),
      deps.temporalReady ? deps.temporalReady().catch(() => false) : Promise.resolve(true),
    ]);
    ctx.status = db && temporal ? 200 : 503;
    ctx.body = { status: db && temporal ? 'ready' : 'not_ready', database: db, temporal };
  });
  let openapi: Record<string, unknown> | undefined;
  open.get('/openapi.json', (ctx) => {
    openapi ??= openApiDocument('1.0.0');
    ctx.body = openapi;
  });
  app.use(open.routes());
  app.use(open.allowedMethods());

  const metrics = new Router();
  if (!deps.cfg.METRICS_PUBLIC) metrics.use(authenticate(deps.db, creds, limits));
  metrics.get('/metrics', async (ctx) => {
    if (!deps.cfg.METRICS_PUBLIC && !['admin', 'metrics'].includes(principal(ctx).kind))
      throw new ApiError(403, 'forbidden', 'Metrics need the metrics token (METRICS_TOKEN) or the admin token.');
    ctx.type = deps.metrics?.contentType ?? 'text/plain; version=0.0.4';
    ctx.body = deps.metrics ? await deps.metrics.render() : '';
  });
  app.use(metrics.routes());
  app.use(metrics.allowedMethods());
  const portal = portalRouter();
  app.use(portal.routes());
  app.use(portal.allowedMethods());

  const v1 = new Router();
  v1.use((ctx, next) => {
    ctx.state.rateLimits = limits; // for the routes declared `limit: 'send'`
    return next();
  });
  v1.use(authenticate(deps.db, creds, limits));
  v1.use(jsonBody(deps.cfg.MAX_PAYLOAD_BYTES));
  for (const r of [
    accountsRouter(deps),
    eventTypesRouter(),
    endpointsRouter(deps),
    eventsRouter(deps),
    deliveriesRouter(deps),
    apiKeysRouter(deps),
    operationalEndpointsRouter(deps),
  ]) {
    v1.use(r.routes(), r.allowedMethods());
  }
  app.use(v1.routes());
  app.use(v1.allowedMethods());
  return app;
}
