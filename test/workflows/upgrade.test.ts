import { Client, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config';
import type { Database } from '../../src/db/database';
import { attemptsOf } from '../../src/db/deliveries';
import { createWebhookSender } from '../../src/http/sendWebhook';
import { silentLogger } from '../../src/logger';
import { Dispatcher } from '../../src/services/dispatcher';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { createDeliveryWorker } from '../../src/temporal/worker';
import type { DeliverWebhookResult } from '../../src/workflows/deliverWebhook';
import { freshDatabase } from '../helpers/db';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { Receiver, waitFor } from '../helpers/receiver';

/**
 * A deploy under deliveries in flight, on the real Temporal dev server (globalSetup's) with a
 * compressed retry schedule: worker build N (today's workflow code) has deliveries waiting on
 * their first back-off timer or in the retry activity's server-side retries; it is shut down and
 * build N+1, whose `deliverWebhook` starts with one more command (fixtures/deliveryMemo*.ts),
 * takes over the task queue. The replay of the in-flight histories happens for real here.
 */
const PER_ACCOUNT = 8;
const quiet = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };
const NON_DETERMINISTIC = temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR;
const cfg = loadConfig({
  RETRY_INITIAL_INTERVAL: '3s',
  RETRY_BACKOFF_COEFFICIENT: '2',
  RETRY_MAXIMUM_INTERVAL: '4s',
  RETRY_JITTER: '0',
  DELIVERY_WINDOW: '5m',
  ATTEMPT_TIMEOUT: '5s',
});
const buildN = () => readFileSync(process.env.RR_TEST_WORKFLOW_BUNDLE!, 'utf8');
const bundle = async (fixture: string) => (await bundleWorkflowCode({ workflowsPath: require.resolve(`./fixtures/${fixture}`), logger: quiet })).code;

let db: Database;
let drop: () => Promise<void>;
let connection: NativeConnection;
let client: Client;
let receiver: Receiver;
const sender = createWebhookSender({ timeoutMs: 5_000, captureBytes: 1024 });

beforeAll(async () => {
  installTemporalRuntime({ level: 'ERROR' });
  ({ db, drop } = await freshDatabase());
  connection = await NativeConnection.connect({ address: process.env.RR_TEST_TEMPORAL_ADDRESS! });
  client = new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE });
});
afterAll(async () => {
  sender.close();
  await connection?.close();
  await drop?.();
});
beforeEach(async () => {
  receiver = await new Receiver().start();
});
const running: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((stop) => stop())); // a failed test's workers
  await receiver.stop();
});

/** A worker of one build on the test's task queue, with the service's real activities. */
function deployment(taskQueue: string) {
  const dispatcher = new Dispatcher(client, db, { ...cfg, TEMPORAL_TASK_QUEUE: taskQueue }, silentLogger);
  return {
    dispatcher,
    async start(code: string) {
      const worker = await createDeliveryWorker({
        connection,
        cfg,
        taskQueue,
        workflowBundle: { code },
        activityDeps: { db, send: sender.send, log: silentLogger, autoDisableAfterMs: cfg.AUTO_DISABLE_AFTER, startRetryWorkflows: (r) => dispatcher.startRetryWorkflows(r) },
      });
      const run = worker.run();
      const stop = async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await run;
      };
      running.push(stop);
      return { worker, stop };
    },
  };
}

/**
 * Publishes deliveries for some accounts in first-attempt batches, or `direct`ly one workflow
 * each (what the reconciler and a resend start: the first attempt is a local activity, then the
 * first back-off is a timer; a batch's hand-over delays the retry workflow's start instead);
 * returns their ids.
 */
async function publish(dispatcher: Dispatcher, url: string, perAccount: number, accounts = 2, direct = false): Promise<string[]> {
  const ids: string[] = [];
  for (let a = 0; a < accounts; a++) {
    const { account, endpoint } = await accountWithEndpoint(db, url);
    const targets = [];
    for (let i = 0; i < perAccount; i++) {
      const { deliveryId } = await storedDelivery(db, account.id, endpoint.id);
      ids.push(deliveryId);
      targets.push({ id: deliveryId, series: 1, meta: { accountId: account.id, endpointId: endpoint.id, eventType: 'referrer_added', url: endpoint.url } });
    }
    if (direct) await Promise.all(targets.map((t) => dispatcher.dispatch(t)));
    else await dispatcher.dispatchAll(targets);
  }
  return ids;
}

/**
 * Build N with every delivery in its retry workflow and waiting: one account's in the retry
 * activity (its attempts retried by the server), then another's on the first back-off timer.
 */
async function inFlightUnderBuildN(taskQueue: string) {
  const deploy = deployment(taskQueue);
  receiver.respond = () => ({ status: 503 });
  const n = await deploy.start(buildN());
  const handlesOf = (ids: string[]) => ids.map((id) => client.workflow.getHandle<() => Promise<DeliverWebhookResult>>(`delivery-${id}`));
  const waiting = (handles: WorkflowHandle[], on: 'activity' | 'timer') =>
    waitFor(async () => {
      const states = await Promise.all(handles.map((h) => waitingOn(h).catch(() => 'not started')));
      return states.every((st) => st === on) ? true : undefined;
    }, `deliveries waiting on their ${on} under build N`);
  const retrying = await publish(deploy.dispatcher, receiver.url, PER_ACCOUNT, 1);
  await waiting(handlesOf(retrying), 'activity');
  const onTimer = await publish(deploy.dispatcher, receiver.url, PER_ACCOUNT, 1, true);
  await waiting(handlesOf(onTimer), 'timer');
  const ids = [...retrying, ...onTimer];
  const handles = handlesOf(ids);
  return { deploy, n, ids, handles, waitingOn: await Promise.all(handles.map(waitingOn)) };
}

/**
 * What a running retry workflow waits on: the retry activity, or its back-off timer — started, so
 * its first workflow task has run (one whose first task had not run yet has no history to keep).
 */
async function waitingOn(h: WorkflowHandle): Promise<'activity' | 'timer' | 'other'> {
  const d = await h.describe();
  if (d.status.name !== 'RUNNING') return 'other';
  if (d.raw.pendingActivities?.length) return 'activity';
  const events = (await h.fetchHistory()).events ?? [];
  return events.some((e) => e.timerStartedEventAttributes) && !events.some((e) => e.timerFiredEventAttributes) ? 'timer' : 'other';
}

/** Delivered, one successful request each, and every request an attempt on record (nothing sent twice). */
async function expectDeliveredOnce(ids: string[]) {
  const rows = await db.query<{ status: string }>('select status from deliveries where id = any($1)', [ids]);
  expect(rows.map((r) => r.status)).toEqual(ids.map(() => 'delivered'));
  for (const id of ids) {
    const attempts = await attemptsOf(db, id);
    expect({ id, successes: attempts.filter((a) => a.status_code === 200).length, requests: receiver.byWebhookId(id).length }).toEqual({
      id,
      successes: 1,
      requests: attempts.length,
    });
    expect(attempts[attempts.length - 1].status_code).toBe(200);
  }
}

const failedNonDeterministically = async (h: WorkflowHandle) =>
  ((await h.fetchHistory()).events ?? []).some((e) => e.workflowTaskFailedEventAttributes?.cause === NON_DETERMINISTIC);

test("when worker build N+1 with a patched workflow change replaces build N while deliveries wait on retries, then every delivery completes, none is sent twice, and new deliveries take the new path (and the patch's later steps replay what they must)", async () => {
  const taskQueue = `upgrade-${randomBytes(4).toString('hex')}`;
  const nextBuild = bundle('deliveryMemoPatched');
  const deprecatedBuild = nextBuild.then(() => bundle('deliveryMemoDeprecated'));
  const { deploy, n, ids, handles, waitingOn } = await inFlightUnderBuildN(taskQueue);

  await n.stop();
  const n1 = await deploy.start(await nextBuild);
  // Receivers recover; a delivery published after the deploy fails once so it gets a retry workflow under N+1.
  receiver.respond = (req) => ({ status: req.path.endsWith('/new') && receiver.requests.filter((r) => r.path.endsWith('/new')).length === 1 ? 503 : 200 });
  const [fresh] = await publish(deploy.dispatcher, `${receiver.url}/new`, 1, 1);
  const freshHandle = client.workflow.getHandle<() => Promise<DeliverWebhookResult>>(`delivery-${fresh}`);
  await waitFor(
    () =>
      freshHandle.describe().then(
        () => true,
        () => undefined,
      ),
    "the new delivery's retry workflow",
  );
  const results = await Promise.all([...handles, freshHandle].map((h) => h.result()));
  await n1.stop();

  expect(results.map((r) => r.status)).toEqual([...ids, fresh].map(() => 'delivered'));
  await expectDeliveredOnce([...ids, fresh]);
  for (const h of handles) expect(await failedNonDeterministically(h)).toBe(false);
  // In flight at the deploy: the old command sequence (patched() is false for them); new: the new one.
  expect(await Promise.all(handles.map((h) => h.describe().then((d) => d.memo)))).toEqual(ids.map(() => ({})));
  expect((await freshHandle.describe()).memo).toEqual({ rrDelivery: `${fresh}/1` });
  // Rolling back to build N: safe for the executions that kept the old path; one that took the new
  // path (patch marker, memo) cannot replay on N and would wait for N+1 to come back.
  const replayOn = (code: string, h: WorkflowHandle) => h.fetchHistory().then((history) => Worker.runReplayHistory({ workflowBundle: { code }, replayName: 'replay' }, history));
  await replayOn(buildN(), handles[0]);
  await expect(replayOn(buildN(), freshHandle)).rejects.toThrow(/Nondeterminism/);
  // Step 2 of the patch (deprecatePatch, new branch only) replays what took the new path, and not
  // an execution recorded before step 1: why it waits until those are older than the window.
  const deprecated = await deprecatedBuild;
  await replayOn(deprecated, freshHandle);
  await expect(replayOn(deprecated, handles[0])).rejects.toThrow(/Nondeterminism/);
  console.log(
    `patched upgrade: ${ids.length} deliveries in flight at the deploy (${waitingOn.filter((s) => s === 'timer').length} on their first back-off timer, ${waitingOn.filter((s) => s === 'activity').length} in server-side activity retries), all delivered once; ${receiver.requests.length} requests in all`,
  );
});

test('when build N+1 carries the same change without patched(), then the deliveries in flight fail their workflow tasks as non-deterministic, and rolling back to build N completes them without sending any twice', async () => {
  const taskQueue = `upgrade-${randomBytes(4).toString('hex')}`;
  const nextBuild = bundle('deliveryMemoUnpatched');
  const { deploy, n, ids, handles } = await inFlightUnderBuildN(taskQueue);

  await n.stop();
  const broken = await deploy.start(await nextBuild);
  receiver.respond = () => ({ status: 200 });
  await waitFor(
    async () => ((await Promise.all(handles.map(failedNonDeterministically))).every(Boolean) ? true : undefined),
    'every in-flight delivery to hit the non-determinism',
  );
  expect(await Promise.all(handles.map((h) => h.describe().then((d) => d.status.name)))).toEqual(ids.map(() => 'RUNNING')); // stuck, not failed
  await broken.stop();

  const rollback = await deploy.start(buildN());
  const results = await Promise.all(handles.map((h) => h.result()));
  await rollback.stop();

  expect(results.map((r) => r.status)).toEqual(ids.map(() => 'delivered'));
  await expectDeliveredOnce(ids);
});
