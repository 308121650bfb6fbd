import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config';
import type { Database } from '../../src/db/database';
import { attemptsOf, getDelivery } from '../../src/db/deliveries';
import { softDeleteEndpoint, updateEndpoint } from '../../src/db/endpoints';
import { baseDelayMs } from '../../src/domain/retrySchedule';
import { rrSignature } from '../../src/domain/signing';
import { createWebhookSender } from '../../src/http/sendWebhook';
import { silentLogger } from '../../src/logger';
import { cancelEndpointDeliveries } from '../../src/services/deliveryControl';
import { Dispatcher, scheduleFrom, workflowIdFor } from '../../src/services/dispatcher';
import { testServerExecutable } from '../../src/temporal/binaries';
import { createDeliveryWorker } from '../../src/temporal/worker';
import type { DeliverWebhookInput, DeliverWebhookResult } from '../../src/workflows/deliverWebhook';
import { freshDatabase } from '../helpers/db';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { Receiver } from '../helpers/receiver';

// The default schedule (10 s × 3ⁿ, capped at 12 h, 3-day window) without jitter, so attempt
// times can be checked exactly; jitter has its own table tests.
const cfg = loadConfig({ RETRY_JITTER: '0' });
const schedule = scheduleFrom(cfg);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let env: TestWorkflowEnvironment;
let db: Database;
let dropDb: () => Promise<void>;
let receiver: Receiver;
let worker: Worker;
let taskQueue: string;
const sender = createWebhookSender({ timeoutMs: 5_000, captureBytes: 1024 });

beforeAll(async () => {
  installTemporalRuntime();
  env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: testServerExecutable() } });
  ({ db, drop: dropDb } = await freshDatabase());
});

afterAll(async () => {
  sender.close();
  await env?.teardown();
  await dropDb?.();
});

beforeEach(async () => {
  receiver = await new Receiver().start();
  taskQueue = `deliveries-${expect.getState().currentTestName?.replace(/\W+/g, '-')}-${Date.now()}`;
  worker = await createDeliveryWorker({
    connection: env.nativeConnection,
    cfg,
    taskQueue,
    workflowBundle: { code: readFileSync(process.env.RR_TEST_WORKFLOW_BUNDLE!, 'utf8') },
    // Attempt times come from the time-skipping server's clock, as the receiver would see them.
    activityDeps: { db, send: sender.send, log: silentLogger, now: () => env.currentTimeMs() },
  });
});

afterEach(async () => {
  await receiver.stop();
});

async function deliver(deliveryId: string, during?: () => Promise<void>): Promise<DeliverWebhookResult> {
  const input: DeliverWebhookInput = { deliveryId, series: 1, schedule, attemptTimeoutMs: 5_000 };
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start('deliverWebhook', { taskQueue, workflowId: workflowIdFor(deliveryId, 1), args: [input] });
    await during?.();
    return (await handle.result()) as DeliverWebhookResult;
  });
}

test('when the receiver fails for about two days and then answers 200, then the delivery is delivered and attempts follow the exponential schedule', async () => {
  const { account, endpoint } = await accountWithEndpoint(db, receiver.url);
  const { deliveryId } = await storedDelivery(db, account.id, endpoint.id);
  // Fail every attempt that starts in the first two days of the window.
  let firstAt: number | undefined;
  receiver.respond = (req) => {
    const ts = Number(req.headers['webhook-timestamp']) * 1000;
    firstAt ??= ts;
    return ts - firstAt < 2 * DAY - HOUR ? { status: 503, body: 'down for maintenance' } : { status: 200, body: 'ok' };
  };

  const result = await deliver(deliveryId);

  expect(result.status).toBe('delivered');
  const row = await getDelivery(db, account.id, deliveryId);
  expect(row?.status).toBe('delivered');
  const attempts = await attemptsOf(db, deliveryId);
  expect(attempts.length).toBe(receiver.requests.length);
  expect(attempts.length).toBeGreaterThanOrEqual(10);
  expect(attempts.slice(0, -1).every((a) => a.status_code === 503 && a.response_body === 'down for maintenance')).toBe(true);
  expect(attempts[attempts.length - 1].status_code).toBe(200);
  // Gap before attempt n+1 is the configured delay after attempt n (a few seconds of slack for real work).
  for (let i = 1; i < attempts.length; i++) {
    const gap = attempts[i].started_at.getTime() - attempts[i - 1].started_at.getTime();
    expect(Math.abs(gap - baseDelayMs(schedule, i))).toBeLessThan(5_000);
  }
  const elapsed = attempts[attempts.length - 1].started_at.getTime() - attempts[0].started_at.getTime();
  expect(elapsed).toBeGreaterThan(2 * DAY - HOUR);
  expect(elapsed).toBeLessThan(3 * DAY);
  // Every attempt carried the same webhook-id and a valid signature.
  expect(receiver.byWebhookId(deliveryId).length).toBe(receiver.requests.length);
  for (const req of receiver.requests) expect(req.headers['x-rr-signature']).toBe(rrSignature(endpoint.secret, req.body));
});

test('when the receiver never recovers, then the delivery is undeliverable at the end of the 3-day window and never retried after', async () => {
  const { account, endpoint } = await accountWithEndpoint(db, receiver.url);
  const { deliveryId } = await storedDelivery(db, account.id, endpoint.id);
  receiver.respond = () => ({ status: 500, body: 'boom' });

  const startedAt = await env.currentTimeMs();
  const result = await deliver(deliveryId);

  expect(result.status).toBe('undeliverable');
  expect(result.reason).toMatch(/retry window exhausted/);
  const row = await getDelivery(db, account.id, deliveryId);
  expect(row?.status).toBe('undeliverable');
  expect(row?.next_attempt_at).toBeNull();
  const attempts = await attemptsOf(db, deliveryId);
  const last = attempts[attempts.length - 1].started_at.getTime();
  expect(last - startedAt).toBeGreaterThan(2.4 * DAY); // kept trying well into day three
  expect(last - startedAt).toBeLessThanOrEqual(3 * DAY);
  expect(row!.finished_at!.getTime() - startedAt).toBeLessThanOrEqual(3 * DAY + 60_000);

  const seen = receiver.requests.length;
  await env.sleep('2 days');
  expect(receiver.requests.length).toBe(seen);
  expect((await getDelivery(db, account.id, deliveryId))?.status).toBe('undeliverable');
});

test('when the endpoint is deleted mid-retry, then the delivery is cancelled and no attempt follows', async () => {
  const { account, endpoint } = await accountWithEndpoint(db, receiver.url);
  const { deliveryId } = await storedDelivery(db, account.id, endpoint.id);
  const dispatcher = new Dispatcher(env.client, db, cfg, silentLogger);
  receiver.respond = () => ({ status: 500 });
  let deletion: Promise<unknown> | undefined;
  receiver.onRequest = (_req, n) => {
    // What DELETE /v1/endpoints/:id does, right after the third failed attempt.
    if (n === 3) deletion = softDeleteEndpoint(db, account.id, endpoint.id).then(() => cancelEndpointDeliveries({ db, dispatcher }, endpoint.id, 'endpoint deleted'));
  };

  const result = await deliver(deliveryId);
  await deletion;

  expect(result.status).toBe('cancelled');
  const row = await getDelivery(db, account.id, deliveryId);
  expect(row?.status).toBe('cancelled');
  expect(row?.final_reason).toBe('endpoint deleted');
  expect(receiver.requests.length).toBe(3);
  await env.sleep('1 day');
  expect(receiver.requests.length).toBe(3);
});

test('when the endpoint is disabled behind the workflow\'s back, then the next attempt stops it as cancelled without sending', async () => {
  const { account, endpoint } = await accountWithEndpoint(db, receiver.url);
  const { deliveryId } = await storedDelivery(db, account.id, endpoint.id);
  receiver.respond = () => ({ status: 500 });
  // Only the database changes (no workflow cancel): the activity's own check must catch it.
  receiver.onRequest = (_req, n) => {
    if (n === 2) void updateEndpoint(db, account.id, endpoint.id, { enabled: false });
  };

  const result = await deliver(deliveryId);

  expect(result.status).toBe('cancelled');
  expect(result.reason).toBe('endpoint disabled');
  expect(receiver.requests.length).toBe(2);
  expect((await getDelivery(db, account.id, deliveryId))?.status).toBe('cancelled');
});
