import type { Client } from '@temporalio/client';
import type { PostBatchInput, PostBatchResult } from '../../src/activities/firstAttemptBatch';
import { loadConfig } from '../../src/config';
import type { Database } from '../../src/db/database';
import { silentLogger } from '../../src/logger';
import { Dispatcher, PUBLISHED_AHEAD_OF_START, type DispatchTarget } from '../../src/services/dispatcher';
import { InlineFirstAttempts } from '../../src/services/inlineFirstAttempts';
import type { DeliverBatchInput } from '../../src/workflows/deliverBatch';

/**
 * Adaptive first-attempt batching (src/services/dispatcher.ts), against a Temporal client whose
 * starts finish when the test says so: an idle account's batch starts at once, and a busy
 * account's deliveries are gathered for the window.
 */
interface Start {
  accountId: string;
  deliveryIds: string[];
  at: number;
  finish: () => void;
}

function setup(env: Record<string, string>) {
  const starts: Start[] = [];
  const client = {
    withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn(),
    workflow: {
      start: (_type: string, opts: { args: [DeliverBatchInput] }) =>
        new Promise<void>((finish) => starts.push({ accountId: opts.args[0].accountId, deliveryIds: opts.args[0].deliveries.map((d) => d.deliveryId), at: Date.now(), finish })),
    },
  } as unknown as Client;
  const db = { query: async () => [] } as unknown as Database; // markDispatched
  const dispatcher = new Dispatcher(client, db, loadConfig(env), silentLogger);
  return { dispatcher, starts };
}

let seq = 0;
const target = (accountId: string): DispatchTarget => ({
  id: `dlv_${++seq}`,
  series: 1,
  meta: { accountId, endpointId: 'ep_1', eventType: 'referrer_added', url: 'https://example.com/hook' },
});
const turn = () => new Promise((r) => setImmediate(r));
async function until(cond: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
}

test("when an account is idle, then a lone publish's batch starts at once, not after the window", async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '2s' });
  const t0 = Date.now();

  const published = dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 1);
  starts[0].finish();
  await published;

  expect(starts[0].at - t0).toBeLessThan(500); // the window is 2 s
  expect(Date.now() - t0).toBeLessThan(1_000);
});

test('when a publish has several deliveries, then they start as one batch', async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '2s' });
  const targets = [1, 2, 3, 4, 5].map(() => target('acc_a'));

  const published = dispatcher.dispatchAll(targets);
  await until(() => starts.length === 1);
  await turn();
  starts[0].finish();
  await published;

  expect(starts).toHaveLength(1);
  expect(starts[0].deliveryIds).toEqual(targets.map((t) => t.id));
});

test("when an account publishes a burst, then after the first publish the burst is gathered into one batch for the window; another account's does not wait", async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '300ms' });
  const first = dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 1); // idle: at once
  starts[0].finish();
  await first;

  const t0 = Date.now();
  const burst = [1, 2, 3, 4].map(() => target('acc_a'));
  const burstDone: Promise<void>[] = [];
  for (const t of burst) {
    burstDone.push(dispatcher.dispatchAll([t])); // separate publishes, in separate turns of the event loop
    await turn();
  }
  const other = dispatcher.dispatchAll([target('acc_b')]);
  await until(() => starts.length === 2);
  expect(starts[1].accountId).toBe('acc_b'); // idle, not held by acc_a's window

  await until(() => starts.length === 3);
  expect(starts[2]).toMatchObject({ accountId: 'acc_a', deliveryIds: burst.map((t) => t.id) });
  expect(starts[2].at - t0).toBeGreaterThanOrEqual(250);
  starts.forEach((s) => s.finish());
  await Promise.all([...burstDone, other]);
});

test('when a busy account has been quiet for a window, then its next batch starts at once again, and it is forgotten', async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '400ms' });
  void dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 1); // idle: at once
  void dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 2); // busy: after the window
  expect(starts[1].at - starts[0].at).toBeGreaterThanOrEqual(350);
  starts.forEach((s) => s.finish());

  await new Promise((r) => setTimeout(r, 450));
  expect(dispatcher.batchingAccounts).toBe(0);
  const t0 = Date.now();
  void dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 3);
  expect(starts[2].at - t0).toBeLessThan(300);
  starts[2].finish();
});

test('when a batch is full, then it starts without waiting for the window', async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '2s', DISPATCH_BATCH_MAX: '3' });
  void dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 1); // idle: at once; the account is busy now

  const full = [1, 2, 3, 4].map(() => target('acc_a'));
  const t0 = Date.now();
  void dispatcher.dispatchAll(full);
  await until(() => starts.length === 2);
  expect(starts[1].deliveryIds).toEqual(full.slice(0, 3).map((t) => t.id));
  expect(starts[1].at - t0).toBeLessThan(1_000);
  await new Promise((r) => setTimeout(r, 100));
  expect(starts).toHaveLength(2); // the fourth waits for the window
  starts.forEach((s) => s.finish());
});

test('when few published deliveries await their start, then the publish path answers before the start; past PUBLISHED_AHEAD_OF_START it waits for it', async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '25ms' });
  const many = (n: number) => Array.from({ length: n }, () => target('acc_a'));

  // As many as may await their start: the answer does not wait for the batch.
  await dispatcher.dispatchAccepted(many(PUBLISHED_AHEAD_OF_START));
  expect(dispatcher.deliveriesAwaitingStart).toBe(PUBLISHED_AHEAD_OF_START);
  await until(() => starts.length === 1);
  expect(starts[0].deliveryIds).toHaveLength(PUBLISHED_AHEAD_OF_START);

  // Two more while those have not started: past the bound, so this answer waits for its own start.
  let answered = false;
  const second = dispatcher.dispatchAccepted(many(2)).then(() => (answered = true));
  await until(() => starts.length === 2);
  await new Promise((r) => setTimeout(r, 50));
  expect(answered).toBe(false);
  starts[1].finish();
  await second;
  expect(answered).toBe(true);

  starts[0].finish();
  await until(() => dispatcher.deliveriesAwaitingStart === 0);
});

/**
 * A dispatcher that sends first attempts from the process (as under `npm start`), whose batches
 * finish when the test says so; a batch workflow it starts instead is recorded.
 */
function inlineSetup(limits: { total: number; perAccount: number; queueMark?: number }) {
  const posted: { ids: string[]; finish: () => void }[] = [];
  const workflowStarts: unknown[] = [];
  const sender = {
    postBatch: (input: PostBatchInput) =>
      new Promise<PostBatchResult>((resolve) =>
        posted.push({ ids: input.deliveries.map((d) => d.deliveryId), finish: () => resolve({ delivered: input.deliveries.length, finished: 0, skipped: 0, retrying: [] }) }),
      ),
    startRetries: () => Promise.resolve(),
  };
  const db = { query: async () => [] } as unknown as Database;
  const inline = new InlineFirstAttempts(sender, db, silentLogger, limits);
  const client = {
    withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn(),
    workflow: { start: async (...args: unknown[]) => void workflowStarts.push(args) },
  } as unknown as Client;
  const dispatcher = new Dispatcher(client, db, loadConfig({}), silentLogger, { inline });
  return { posted, workflowStarts, inline, dispatcher };
}

test("when first attempts are sent from the process (npm start's default), then each publish of a busy account goes on the next turn with no window while the account has room; once its share is full the next ones wait there and go merged", async () => {
  const { posted, workflowStarts, inline, dispatcher } = inlineSetup({ total: 4, perAccount: 2 });

  const a = [1, 2, 3, 4].map(() => target('acc_a'));
  // Separate publishes in separate turns: the second is sent on its next turn too, on its own (a
  // window of a few ms would still hold it here), while the first is in flight.
  void dispatcher.dispatchAll([a[0]]);
  await turn();
  await turn();
  void dispatcher.dispatchAll([a[1]]);
  await turn();
  await turn();
  expect(posted.map((p) => p.ids)).toEqual([[a[0].id], [a[1].id]]);
  // The account's share (2) is full: these wait in the process, not in a window or a workflow.
  await dispatcher.dispatchAll([a[2]]);
  await dispatcher.dispatchAll([a[3]]);
  expect(inline.deliveriesWaiting).toBe(2);
  expect(posted).toHaveLength(2);

  posted[0].finish();
  await until(() => posted.length === 3);
  expect(posted[2].ids).toEqual([a[2].id, a[3].id]); // merged while they waited
  posted.slice(1).forEach((p) => p.finish());
  await inline.shutdown();
  expect(workflowStarts).toHaveLength(0);
});

test("when an account's backlog waiting in the process is past the mark, then its publish answers only once the backlog is under it (back-pressure instead of batch workflows)", async () => {
  const { posted, workflowStarts, inline, dispatcher } = inlineSetup({ total: 2, perAccount: 1, queueMark: 2 });
  const publish = (n: number) => Array.from({ length: n }, () => target('acc_a'));

  await dispatcher.dispatchAccepted(publish(1)); // runs
  await until(() => posted.length === 1);
  await dispatcher.dispatchAccepted(publish(2)); // the check came before its batch is queued
  await until(() => inline.deliveriesWaiting === 2); // no room for the account: after its batch window, waiting in the process
  let answered = false;
  const third = dispatcher.dispatchAccepted(publish(1)).then(() => (answered = true)); // 2 waiting: held
  await until(() => inline.deliveriesWaiting === 3); // its own batch queued behind, after the window
  await turn();
  expect(answered).toBe(false);

  posted[0].finish(); // the waiting ones take the room: none left waiting
  await until(() => answered);
  expect(inline.deliveriesWaiting).toBe(0);
  posted.slice(1).forEach((p) => p.finish());
  await third;
  await inline.shutdown();
  expect(workflowStarts).toHaveLength(0);
});
