import { attemptsOf, getDelivery } from '../../src/db/deliveries';
import { healthOf } from '../../src/db/endpointHealth';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { timeSkippingSuite } from '../helpers/timeSkipping';

// Default schedule without jitter; the circuit opens after 3 failures in a row.
const suite = timeSkippingSuite({ CIRCUIT_OPEN_AFTER: '3' });
const HOUR = 3_600_000;
const sentAt = (req: { headers: Record<string, unknown> }) => Number(req.headers['webhook-timestamp']) * 1000;

test('when a probe succeeds after a 6-hour outage, then the drain sends every held delivery within a minute (not at each one\'s own next slot), each exactly once, and every retry workflow completes delivered without another request', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const t0 = await suite.env.currentTimeMs();
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) ids.push((await storedDelivery(suite.db, account.id, endpoint.id, 'referrer_added', new Date(t0 - 30 + i))).deliveryId);
  // Down for 6 hours of the (skipped) clock, then back.
  suite.receiver.respond = (req) => (sentAt(req) - t0 < 6 * HOUR ? { status: 503 } : { status: 200 });

  const { retries } = await suite.deliverBatch(account.id, ids);

  for (const id of ids) expect(retries.get(id)?.status).toBe('delivered');
  const ok = suite.receiver.requests.filter((r) => sentAt(r) - t0 >= 6 * HOUR);
  // Exactly one successful request per delivery: the probe's, then the drain's.
  expect(ok.map((r) => r.headers['webhook-id']).sort()).toEqual([...ids].sort());
  const probeAt = Math.min(...ok.map(sentAt));
  const lastAt = Math.max(...ok.map(sentAt));
  expect(lastAt - probeAt).toBeLessThan(60_000);
  for (const id of ids) {
    const row = (await getDelivery(suite.db, account.id, id))!;
    expect(row.status).toBe('delivered');
    expect(row.attempt_count).toBe((await attemptsOf(suite.db, id)).length);
  }
  expect(suite.receiver.requests.length).toBe((await Promise.all(ids.map((id) => attemptsOf(suite.db, id)))).flat().length);
  expect((await healthOf(suite.db, [endpoint.id])).get(endpoint.id)?.state).toBe('healthy');
  const drain = await suite.env.client.workflow.getHandle(`drain-${endpoint.id}`).result();
  expect(drain).toMatchObject({ delivered: ids.length - 1, failed: 0 });
  console.log(`drain: probe → last of ${ids.length} held deliveries ${lastAt - probeAt} ms (skipped clock); ${suite.receiver.requests.length} requests in all`);
});
