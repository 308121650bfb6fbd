import { Client as PgClient } from 'pg';
import { openPostgres } from '../../src/db/database';
import { paidAccountWithEndpoint, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

// A slow database against Temporal's activity timeouts, on a real Postgres and the real dev
// server (api:postgres project only: the slowdown is a table lock held from another connection).
let h: Harness;
let receiver: Receiver;

beforeAll(async () => {
  // An attempt's start-to-close timeout is ATTEMPT_TIMEOUT + 30 s = 31 s; the retry after it comes 4 s later.
  h = await startHarness({ ATTEMPT_TIMEOUT: '1s', RETRY_INITIAL_INTERVAL: '4s', RETRY_BACKOFF_COEFFICIENT: '1' });
  receiver = await new Receiver().start();
});
afterAll(async () => {
  await receiver?.stop();
  await h?.close();
});

/** Backends of the test database waiting on a lock. */
async function lockWaiters(admin: PgClient): Promise<number> {
  const [row] = (await admin.query(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)).rows;
  return row.n as number;
}

test('when the database stalls an attempt past its timeout and Temporal starts the next one, then the delivery is still sent once', async () => {
  receiver.respond = (_r, n) => (n === 1 ? { status: 500, body: 'first attempt fails' } : { status: 200, body: 'ok' });
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const res = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) } });
  expect(res.status).toBe(202);
  const deliveryId: string = res.body.deliveries[0].id;
  // The first attempt (a batch) failed and handed the delivery to its retry workflow, whose attempt comes in 4 s.
  await waitFor(async () => {
    const [d] = await h.db.query<{ workflow_id: string | null; attempt_count: number }>('select workflow_id, attempt_count from deliveries where id = $1', [deliveryId]);
    return d?.attempt_count === 1 && d.workflow_id === `delivery-${deliveryId}` ? true : undefined;
  }, 'the first attempt to be recorded and handed over');

  // The slow database: every attempt's claim reads endpoint_limits, which another connection now holds locked.
  const locker = new PgClient({ connectionString: h.dbUrl });
  await locker.connect();
  const admin = new PgClient({ connectionString: h.dbUrl });
  await admin.connect();
  try {
    await locker.query('begin');
    await locker.query('lock table endpoint_limits in access exclusive mode');
    // Attempt 2 blocks in its claim, Temporal times it out after 31 s and starts attempt 3, which blocks too.
    await waitFor(async () => ((await lockWaiters(admin)) >= 2 ? true : undefined), 'a timed-out attempt and its retry both waiting on the database', 90_000, 500);
    const handle = h.client.workflow.getHandle(`delivery-${deliveryId}`);
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    expect(pending[0]?.attempt).toBeGreaterThanOrEqual(2); // the retry of the timed-out attempt, which still runs
    await locker.query('commit'); // the database answers both
  } finally {
    await locker.end().catch(() => undefined);
    await admin.end();
  }

  await waitFor(
    async () => {
      const [d] = await h.db.query<{ status: string }>('select status from deliveries where id = $1', [deliveryId]);
      return d?.status === 'delivered' ? true : undefined;
    },
    'the delivery to be delivered',
    30_000,
  );
  await new Promise((r) => setTimeout(r, 3_000)); // room for a late duplicate
  expect(receiver.byWebhookId(deliveryId).length).toBe(2); // the failed first attempt and one success
  const [row] = await h.db.query<{ attempt_count: number; attempt_token: string | null }>('select attempt_count, attempt_token from deliveries where id = $1', [deliveryId]);
  expect(row.attempt_count).toBe(2);
  expect(row.attempt_token).toBeNull(); // the record released the fence
}, 120_000);

test('when a statement or the pool is too slow, then the statement timeouts end the wait', async () => {
  const db = await openPostgres(h.dbUrl!, 1, { acquireMs: 200, statementMs: 1_000, idleInTransactionMs: 2_000 });
  try {
    await expect(db.query('select pg_sleep(2)')).rejects.toThrow(/statement timeout/);
    // The one connection is busy: the next statement gives up waiting for it.
    const busy = db.query('select pg_sleep(0.6)');
    await expect(db.query('select 1')).rejects.toThrow(/timeout/i);
    await busy;
    const [row] = await db.query<{ s: string; i: string }>("select current_setting('statement_timeout') as s, current_setting('idle_in_transaction_session_timeout') as i");
    expect(row).toEqual({ s: '1s', i: '2s' });
  } finally {
    await db.close();
  }
});
