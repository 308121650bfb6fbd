import Koa from 'koa';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeApi, listenApi } from '../../src/api/listen';
import { loadConfig } from '../../src/config';

/** A Koa app on loopback, counting the TCP connections it accepts and those closed. */
async function serve(keepAliveMs: number, handlerMs = 0) {
  const app = new Koa();
  app.use(async (ctx) => {
    if (handlerMs > 0) await new Promise((r) => setTimeout(r, handlerMs));
    ctx.body = { ok: true };
  });
  const server = await listenApi(app, { PORT: 0, HOST: '127.0.0.1', HTTP_KEEP_ALIVE_TIMEOUT: keepAliveMs });
  const seen = { opened: 0, closed: 0 };
  server.on('connection', (socket) => {
    seen.opened++;
    socket.on('close', () => seen.closed++);
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
  const stop = async () => {
    agent.destroy();
    await new Promise((r) => server.close(r));
  };
  return { server, seen, get, stop };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('when nothing is configured, then idle keep-alive connections are kept 65 s', () => {
  expect(loadConfig({}).HTTP_KEEP_ALIVE_TIMEOUT).toBe(65_000);
  expect(loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT: '2m' }).HTTP_KEEP_ALIVE_TIMEOUT).toBe(120_000);
});

test('when the keep-alive timeout passes, then the API closes the idle connection', async () => {
  const s = await serve(300);
  try {
    expect(s.server.keepAliveTimeout).toBe(300);
    expect(await s.get()).toBe(200);
    await sleep(2_000);
    expect(s.seen).toEqual({ opened: 1, closed: 1 });
  } finally {
    await s.stop();
  }
});

test("when a connection idles past Node's default (5 s, closed after 6 s in Node 24), then it is still open and the next request reuses it", async () => {
  const s = await serve(65_000);
  try {
    expect(s.server.headersTimeout).toBeGreaterThan(65_000);
    expect(await s.get()).toBe(200);
    await sleep(7_000);
    expect(s.seen).toEqual({ opened: 1, closed: 0 });
    expect(await s.get()).toBe(200);
    expect(s.seen.opened).toBe(1);
  } finally {
    await s.stop();
  }
}, 20_000);

test('when the API closes while a request is in flight, then the request is answered and its kept connection does not hold the close open', async () => {
  const s = await serve(65_000, 300);
  try {
    const answered = s.get();
    await sleep(100);
    const started = Date.now();
    await Promise.all([closeApi(s.server), answered.then((status) => expect(status).toBe(200))]);
    expect(Date.now() - started).toBeLessThan(2_000);
    await sleep(100); // the socket's own close event comes a turn later
    expect(s.seen).toEqual({ opened: 1, closed: 1 });
  } finally {
    await s.stop().catch(() => undefined);
  }
}, 10_000);
