import { startHarness, paidAccountWithEndpoint, participant, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

/**
 * Adaptive first-attempt batching, end to end (real Temporal, real database): with a 5 s
 * DISPATCH_BATCH_WINDOW, an idle account's publish is started and delivered without waiting for
 * the window, and a burst still shares batch workflows.
 */
let h: Harness;
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness({ DISPATCH_BATCH_WINDOW: '5s', DISPATCH_INLINE: 'false' }); // the window of batch workflows
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

test('when an idle account publishes one event, then its batch starts and it is delivered well before the 5 s window', async () => {
  const warm = await paidAccountWithEndpoint(h, receiver.url); // the first delivery of a fresh worker is slower
  await h.call('POST', '/v1/events', { body: { accountId: warm.id, eventType: 'referrer_added', data: participant(0) } });
  await waitFor(() => receiver.requests.length === 1 || undefined, 'the warm-up webhook');
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const t0 = Date.now();

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) } });
  const answeredMs = Date.now() - t0; // the 202 waits for the batch's start
  await waitFor(() => receiver.requests.length === 2 || undefined, 'the webhook');

  expect(pub.status).toBe(202);
  expect(answeredMs).toBeLessThan(2_500);
  expect(receiver.requests[1].at - t0).toBeLessThan(2_500);
});

test('when an account publishes a burst, then after the first publish its deliveries share one batch workflow', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const events = 8; // all in flight at once (the per-account publish share)

  const pubs = await Promise.all(
    Array.from({ length: events }, (_, i) => h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(10 + i) } })),
  );
  await waitFor(() => receiver.requests.length === events || undefined, 'the webhooks');

  expect(pubs.map((p) => p.status)).toEqual(Array(events).fill(202));
  const rows = await h.db.query<{ w: string }>(`select dispatched_workflow_id as w from deliveries where account_id = $1`, [account.id]);
  expect(rows.every((r) => r.w.startsWith('batch-'))).toBe(true);
  expect(new Set(rows.map((r) => r.w)).size).toBeLessThanOrEqual(2); // the idle account's first at once, the rest within the window
});
