import { Worker } from 'node:worker_threads';
import { DestinationGuard } from '../../src/http/destinationGuard';
import { createWebhookSender } from '../../src/http/sendWebhook';
import { Receiver } from '../helpers/receiver';

let receiver: Receiver;
const sender = createWebhookSender({ timeoutMs: 500, captureBytes: 64 });
beforeEach(async () => {
  receiver = await new Receiver().start();
});
afterEach(async () => {
  await receiver.stop();
});
afterAll(() => sender.close());

test('when the receiver redirects, then the redirect is not followed and counts as a failure', async () => {
  receiver.respond = (req) => (req.path === '/webhooks' ? { status: 302, headers: { location: '/elsewhere' } } : { status: 200 });
  const r = await sender.send(receiver.url, {}, '{}');
  expect(r.statusCode).toBe(302);
  expect(receiver.requests.map((q) => q.path)).toEqual(['/webhooks']);
});

test('when the receiver is slower than the attempt timeout, then the attempt ends as timed out', async () => {
  receiver.respond = () => ({ status: 200, delayMs: 1_200 });
  const r = await sender.send(receiver.url, {}, '{}');
  expect(r.timedOut).toBe(true);
  expect(r.statusCode).toBeUndefined();
  expect(r.durationMs).toBeGreaterThanOrEqual(450);
  expect(r.durationMs).toBeLessThan(1_500);
});

test('when the answer arrived before the deadline but the event loop was busy until after it, then the answer wins over the timeout', async () => {
  // The receiver runs on its own thread, so it answers (after 50 ms) while this thread is blocked.
  const thread = new Worker(
    `const { createServer } = require('node:http');
     const { parentPort } = require('node:worker_threads');
     const server = createServer((req, res) => { req.resume(); req.on('end', () => setTimeout(() => res.end('ok'), 50)); });
     server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`,
    { eval: true },
  );
  try {
    const port = await new Promise<number>((ok) => thread.once('message', ok));
    const quick = createWebhookSender({ timeoutMs: 150, captureBytes: 64 });
    const sent = quick.send(`http://127.0.0.1:${port}/`, {}, '{}');
    // Busy from 40 ms (the request has gone out) to 440 ms, past the answer and the deadline, in
    // the check phase: the loop's next turn runs the expired deadline before it reads the socket.
    setTimeout(
      () =>
        setImmediate(() => {
          const until = Date.now() + 400;
          while (Date.now() < until);
        }),
      40,
    );
    const r = await sent;
    quick.close();
    expect(r.timedOut).toBeUndefined();
    expect(r.statusCode).toBe(200);
    expect(r.durationMs).toBeGreaterThanOrEqual(400);
  } finally {
    await thread.terminate();
  }
});

test('when the response body is huge, then only the capture cap is kept', async () => {
  receiver.respond = () => ({ status: 500, body: 'x'.repeat(2_000_000) });
  const r = await sender.send(receiver.url, {}, '{}');
  expect(r.statusCode).toBe(500);
  expect(r.bodyExcerpt).toBe('x'.repeat(64));
});

test('when nothing listens, then the error names the network failure', async () => {
  const url = receiver.url;
  await receiver.stop();
  const r = await sender.send(url, {}, '{}');
  expect(r.error).toMatch(/ECONNREFUSED/);
});

test('when a hostname resolves to a forbidden address at connect time, then no connection is made', async () => {
  // A name that "resolves" to loopback, with loopback not allow-listed.
  const guard = new DestinationGuard({ allowCidrs: [], allowHttp: true }, async () => [{ address: '127.0.0.1', family: 4 }]);
  const guarded = createWebhookSender({ timeoutMs: 1_000, captureBytes: 64, lookup: guard.lookup, literalProblem: (h) => guard.literalProblem(h) });
  const port = new URL(receiver.url).port;
  const byName = await guarded.send(`http://receiver.test:${port}/webhooks`, {}, '{}');
  expect(byName.forbidden).toBe(true);
  const byLiteral = await guarded.send(receiver.url, {}, '{}');
  expect(byLiteral.forbidden).toBe(true);
  expect(receiver.requests).toHaveLength(0);
  guarded.close();
});

test.each([['::127.0.0.1'], ['::ffff:0:127.0.0.1'], ['64:ff9b::7f00:1'], ['2002:7f00:1::1'], ['2001::1']])(
  'when a URL or a DNS answer uses the IPv6 form %s of a forbidden address, then the sender refuses it without connecting',
  async (ip) => {
    const guard = new DestinationGuard({ allowCidrs: [], allowHttp: true }, async () => [{ address: ip, family: 6 }]);
    const guarded = createWebhookSender({ timeoutMs: 1_000, captureBytes: 64, lookup: guard.lookup, literalProblem: (h) => guard.literalProblem(h) });
    const port = new URL(receiver.url).port;
    const byLiteral = await guarded.send(`http://[${ip}]:${port}/webhooks`, {}, '{}');
    expect(byLiteral).toMatchObject({ forbidden: true, error: expect.stringMatching(/forbidden address/) });
    const byName = await guarded.send(`http://receiver.test:${port}/webhooks`, {}, '{}');
    expect(byName).toMatchObject({ forbidden: true, error: expect.stringMatching(/forbidden address/) });
    expect(receiver.requests).toHaveLength(0);
    guarded.close();
  },
);

test('when the receiver answers with headers, then the result keeps them, without its cookies', async () => {
  receiver.respond = () => ({ status: 200, body: 'ok', headers: { 'X-Request-Id': 'req_42', 'Set-Cookie': ['sid=secret; HttpOnly', 'b=2'] } });
  const r = await sender.send(receiver.url, {}, '{}');
  expect(r.responseHeaders).toMatchObject({ 'x-request-id': 'req_42', 'content-type': 'text/plain' });
  expect(JSON.stringify(r.responseHeaders)).not.toMatch(/cookie|sid=/i);
});
