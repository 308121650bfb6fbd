import { attemptsOf, getDelivery, recordAttempts } from '../../src/db/deliveries';
import { ensureRetentionSchedule, RETENTION_SCHEDULE_ID } from '../../src/temporal/retentionSchedule';
import type { PurgeOldDataInput } from '../../src/workflows/purgeOldData';
import { startHarness, type Harness } from '../helpers/apiHarness';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ RETENTION: '30d', RETENTION_PURGE_INTERVAL: '1h' });
});
afterAll(async () => {
  await h.client.schedule
    .getHandle(RETENTION_SCHEDULE_ID)
    .delete()
    .catch(() => undefined);
  await h?.close();
});

const DAY = 86_400_000;

test('when the purge runs, then attempt logs and finished payloads older than the retention go, in batches, and newer or pending ones stay', async () => {
  const { account, endpoint } = await accountWithEndpoint(h.db, 'https://127.0.0.1/hook');
  const old = new Date(Date.now() - 40 * DAY);
  const oldDone = await storedDelivery(h.db, account.id, endpoint.id, 'referrer_added', old);
  const oldPending = await storedDelivery(h.db, account.id, endpoint.id, 'referrer_added', old);
  const fresh = await storedDelivery(h.db, account.id, endpoint.id, 'referrer_added', new Date());
  await h.db.query(`update deliveries set status = 'delivered' where id = any($1)`, [[oldDone.deliveryId, fresh.deliveryId]]);
  // Each attempt with its response body and headers (the log's request and response headers).
  const logged = { responseBody: 'oops', requestHeaders: { 'webhook-id': 'dlv_x', Authorization: '••••q2xY' }, responseHeaders: { 'x-request-id': 'req_1' } };
  for (let i = 0; i < 5; i++)
    await recordAttempts(h.db, [{ deliveryId: oldDone.deliveryId, series: 1, startedAt: new Date(old.getTime() + i * 1000), durationMs: 5, statusCode: 500, ...logged }]);
  await recordAttempts(h.db, [{ deliveryId: fresh.deliveryId, series: 1, startedAt: new Date(), durationMs: 5, statusCode: 200, ...logged }]);

  const input: PurgeOldDataInput = { retentionMs: 30 * DAY, batchSize: 2 }; // tiny batches: several rounds
  const purged = await h.client.workflow.execute('purgeOldData', { taskQueue: h.cfg.TEMPORAL_TASK_QUEUE, workflowId: `purge-test-${Date.now()}`, args: [input] });

  expect(purged).toEqual({ attempts: 5, payloads: 1 });
  expect(await attemptsOf(h.db, oldDone.deliveryId)).toEqual([]);
  expect(await attemptsOf(h.db, fresh.deliveryId)).toEqual([
    expect.objectContaining({ response_body: 'oops', request_headers: logged.requestHeaders, response_headers: logged.responseHeaders }),
  ]);
  // The old attempts' bodies and headers went with their rows: none is left anywhere.
  const leftOver = await h.db.query('select 1 from delivery_attempts where delivery_id = $1 and (request_headers is not null or response_headers is not null)', [
    oldDone.deliveryId,
  ]);
  expect(leftOver).toEqual([]);
  const bodies = await h.db.query<{ id: string; body: string; purged_at: Date | null }>('select id, body, purged_at from events where account_id = $1', [account.id]);
  const byId = Object.fromEntries(bodies.map((b) => [b.id, b]));
  expect(byId[oldDone.eventId].body).toBe('');
  expect(byId[oldDone.eventId].purged_at).not.toBeNull();
  expect(byId[oldPending.eventId].body).not.toBe(''); // still being delivered: kept
  expect(byId[fresh.eventId].body).not.toBe('');
  expect((await getDelivery(h.db, account.id, oldDone.deliveryId))?.status).toBe('delivered'); // the status history stays

  const detail = await h.call('GET', `/v1/deliveries/${oldDone.deliveryId}?accountId=${account.id}`);
  expect(detail.body.payload).toBeNull();
  const resend = await h.call('POST', `/v1/deliveries/${oldDone.deliveryId}/resend?accountId=${account.id}`);
  expect(resend.status).toBe(409);
  expect(resend.body.code).toBe('payload_purged');
});

test('when workers start, then one retention Schedule exists that runs the purge every interval, and starting again only updates it', async () => {
  await ensureRetentionSchedule(h.client, h.cfg);
  await ensureRetentionSchedule(h.client, { ...h.cfg, RETENTION: 7 * DAY });

  const described = await h.client.schedule.getHandle(RETENTION_SCHEDULE_ID).describe();
  expect(described.action.type).toBe('startWorkflow');
  if (described.action.type !== 'startWorkflow') return;
  expect(described.action.workflowType).toBe('purgeOldData');
  expect(described.action.taskQueue).toBe(h.cfg.TEMPORAL_TASK_QUEUE);
  expect(described.action.args).toEqual([{ retentionMs: 7 * DAY, batchSize: 1000 }]);
  expect(described.spec.intervals).toEqual([expect.objectContaining({ every: 3_600_000 })]);
  expect(described.policies.overlap).toBe('SKIP');
});
