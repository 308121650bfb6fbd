import type Koa from 'koa';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { Config } from '../config';

/**
 * The API's HTTP server, listening on PORT and HOST. An idle keep-alive connection stays open
 * HTTP_KEEP_ALIVE_TIMEOUT (Node's own default is 5 s): a load balancer in front (AWS ALB keeps idle
 * connections 60 s) must not reuse a connection the service has just closed, which it answers
 * with a 502, and a publisher's connections outlive an ordinary lull instead of being opened again.
 */
export async function listenApi(app: Koa, cfg: Pick<Config, 'PORT' | 'HOST' | 'HTTP_KEEP_ALIVE_TIMEOUT'>): Promise<Server> {
  const server = app.listen(cfg.PORT, cfg.HOST);
  server.keepAliveTimeout = cfg.HTTP_KEEP_ALIVE_TIMEOUT;
  // Headers of a request on a kept connection must not be timed out before the connection is.
  server.headersTimeout = Math.max(server.headersTimeout, cfg.HTTP_KEEP_ALIVE_TIMEOUT + 1_000);
  await once(server, 'listening');
  return server;
}

/**
 * Stops taking connections; settles once the requests in flight are answered. Kept connections are
 * closed as soon as they are idle: one that finished its request after the close began would
 * otherwise hold the server, and the shutdown, open until its keep-alive timeout.
 */
export function closeApi(server: Server): Promise<void> {
  return new Promise((done) => {
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearInterval(sweep);
      done();
    });
    server.closeIdleConnections();
  });
}
