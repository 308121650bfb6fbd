import { Client } from 'pg';
import type { Queryable } from '../../src/db/database';
import { claimForAttempt, takeAccepted } from '../../src/db/deliveries';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { freshDatabase } from '../helpers/db';

// Real Postgres only (*.pg.test.ts): the attempt claim's commit does not wait for its WAL flush
// (src/db/deliveries.ts, claimForAttempt), nor does a worker's take from the outbox (takeAccepted);
// that setting stays inside their own transactions.
let fresh: Awaited<ReturnType<typeof freshDatabase>>;
let client: Client;
beforeAll(async () => {
  fresh = await freshDatabase();
  client = new Client({ connectionString: fresh.url! });
  await client.connect();
  await client.query('set synchronous_commit = on'); // as in production (the test server turns it off for speed)
});
afterAll(async () => {
  await client?.end();
  await fresh?.drop();
});

const session: () => Queryable = () => ({ query: async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[] });
const setting = async () => (await client.query<{ s: string }>("select current_setting('synchronous_commit') as s")).rows[0].s;

test("when a delivery is claimed for an attempt, then that transaction's commit is asynchronous, the session's setting is untouched afterwards, and another session sees the claim at once", async () => {
  const { account, endpoint } = await accountWithEndpoint(fresh.db, 'https://hooks.example.com/claim');
  const { deliveryId } = await storedDelivery(fresh.db, account.id, endpoint.id);
  expect(await setting()).toBe('on');

  await client.query('begin');
  const [claimed] = await claimForAttempt(session(), [{ id: deliveryId, series: 1 }], 'inline-test-1', { token: 'tok-1', leaseMs: 30_000 });
  expect(claimed).toMatchObject({ claimed: true, fenced: true });
  expect(await setting()).toBe('off'); // what this transaction's commit reads
  await client.query('commit');
  expect(await setting()).toBe('on'); // local to the claim's transaction

  // Asynchronous commit changes durability only: another session sees the owner and fence at once.
  const [other] = await claimForAttempt(fresh.db, [{ id: deliveryId, series: 1 }], 'inline-test-2', { token: 'tok-2', leaseMs: 30_000 });
  expect(other).toMatchObject({ claimed: false, fenced: false });
  expect(other.delivery.workflow_id).toBe('inline-test-1');

  // Run on its own (autocommit), as the senders do: the session keeps its setting too.
  const { deliveryId: second } = await storedDelivery(fresh.db, account.id, endpoint.id);
  expect((await claimForAttempt(session(), [{ id: second, series: 1 }], 'inline-test-3'))[0].claimed).toBe(true);
  expect(await setting()).toBe('on');
});

test("when a worker takes announced deliveries from the outbox, then that transaction's commit is asynchronous and the session's setting is untouched afterwards; a second take finds them held", async () => {
  const { account, endpoint } = await accountWithEndpoint(fresh.db, 'https://hooks.example.com/take');
  const { deliveryId } = await storedDelivery(fresh.db, account.id, endpoint.id);

  await client.query('begin');
  expect((await takeAccepted(session(), [deliveryId], 15_000)).map((t) => t.id)).toEqual([deliveryId]);
  expect(await setting()).toBe('off');
  await client.query('commit');
  expect(await setting()).toBe('on');
  expect(await takeAccepted(fresh.db, [deliveryId], 15_000)).toEqual([]); // held: seen by another session at once
});
