import { SendSlots } from '../../src/http/sendSlots';
import { SendStops } from '../../src/http/sendStops';
import { createWebhookSender } from '../../src/http/sendWebhook';
import { Receiver, waitFor } from '../helpers/receiver';

let receiver: Receiver;
const sender = createWebhookSender({ timeoutMs: 3_000, captureBytes: 64 });
beforeEach(async () => {
  receiver = await new Receiver().start();
});
afterEach(async () => {
  await receiver.stop();
});
afterAll(() => sender.close());

test('when every slot of an origin is taken, then the next sender waits for one (first come, first served) and other origins are not held up', async () => {
  const slots = new SendSlots(2);
  const a = slots.tryAcquire('http://a.test/x')!;
  const b = slots.tryAcquire('http://a.test/y')!;
  expect(slots.tryAcquire('http://a.test/z')).toBeUndefined();
  expect(slots.tryAcquire('http://b.test/')).toBeDefined();
  const order: string[] = [];
  const first = slots.acquire('http://a.test/1').then((r) => (order.push('1'), r));
  const second = slots.acquire('http://a.test/2').then((r) => (order.push('2'), r));
  a();
  a(); // twice is once
  (await first)();
  b();
  await second;
  expect(order).toEqual(['1', '2']);
  expect(slots.busy('http://a.test/')).toBe(1);
});

test('when an endpoint is stopped after a check began, then that check clears nothing; a later check does', () => {
  const stops = new SendStops();
  const before = stops.mark();
  stops.stop('ep_1');
  expect(stops.ticket('ep_1', before)).toBeUndefined();
  expect(stops.ticket('ep_2', before)).toBeDefined();
  expect(stops.ticket('ep_1', stops.mark())).toBeDefined(); // re-enabled and checked again
});

test('when a request is stopped before it reaches the wire, then nothing is sent; once sent, a stop does not abort it', async () => {
  const stopped = new AbortController();
  stopped.abort();
  const never = await sender.send(receiver.url, {}, '{}', stopped.signal);
  expect(never).toMatchObject({ aborted: true });
  // Stopped while its socket is still connecting: the abort comes before the connect completes.
  const connecting = new AbortController();
  const racing = sender.send(receiver.url, {}, '{}', connecting.signal);
  connecting.abort();
  expect(await racing).toMatchObject({ aborted: true });

  receiver.respond = () => ({ status: 200, delayMs: 300 });
  const inFlight = new AbortController();
  const sending = sender.send(receiver.url, {}, '{}', inFlight.signal);
  await waitFor(() => receiver.requests.length === 1 || undefined, 'the request', 3_000, 5);
  inFlight.abort();
  expect(await sending).toMatchObject({ statusCode: 200 });
  await new Promise((r) => setTimeout(r, 100));
  expect(receiver.requests).toHaveLength(1);
});
