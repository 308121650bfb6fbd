import type Koa from 'koa';
import { once } from 'node:events';
import type { Server } from 'node:http';

/**
 * The API's HTTP server, listening. An idle keep-alive connection stays open `keepAliveMs`
 * (HTTP_KEEP_ALIVE_TIMEOUT; Node's own default is 5 s): a load balancer in front (AWS ALB keeps idle
 * connections 60 s) must not reuse a connection the service has just closed, which it answers
 * with a 502, and a publisher's connections outlive an ordinary lull instead of being opened again.
 */
export async function listenApi(app: Koa, opts: { port: number; host: string; keepAliveMs: number }): Promise<Server> {
  const server = app.listen(opts.port, opts.host);
  server.keepAliveTimeout = opts.keepAliveMs;
  // Headers of a request on a kept connection must not be timed out before the connection is.
  server.headersTimeout = Math.max(server.headersTimeout, opts.keepAliveMs + 1_000);
  await once(server, 'listening');
  return server;
}
