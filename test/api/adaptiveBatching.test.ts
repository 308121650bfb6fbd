import { startHarness, paidAccountWithEndpoint, participant, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

/**
 * Adaptive first-attempt batching, end to end (real Temporal, real database): with a 2 s
 * DISPATCH_BATCH_WINDOW, a lone publish is started and delivered without waiting for the window.
 * That a burst still shares batches is shown in test/unit/dispatchBatching.test.ts, where the
 * starts take as long as the test says (here a start can finish before the next publish is
 * accepted, and then there is nothing to gather).
 */
let h: Harness;
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness({ DISPATCH_BATCH_WINDOW: '2s' });
});
afterAll(async () => {
  await h?.close();
});
beforeEach(async () => {
  receiver = await new Receiver().start();
});
afterEach(async () => {
  await receiver.stop();
});

test('when an account publishes one event, then its batch starts and it is delivered well before the 2 s window', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const t0 = Date.now();

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) } });
  const answeredMs = Date.now() - t0; // the 202 waits for the batch's start
  await waitFor(() => receiver.requests.length === 1 || undefined, 'the webhook');

  expect(pub.status).toBe(202);
  expect(answeredMs).toBeLessThan(1_500);
  expect(receiver.requests[0].at - t0).toBeLessThan(1_500);
});
