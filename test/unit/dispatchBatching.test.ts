import type { Client } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import type { Database } from '../../src/db/database';
import { silentLogger } from '../../src/logger';
import { Dispatcher, type DispatchTarget } from '../../src/services/dispatcher';
import type { DeliverBatchInput } from '../../src/workflows/deliverBatch';

/**
 * Adaptive first-attempt batching (src/services/dispatcher.ts), against a Temporal client whose
 * starts finish when the test says so: an idle account's batch starts at once, and a burst gathers
 * while the account's previous batch is being started.
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

test("when an account has no batch being started, then a lone publish's batch starts at once, not after the window", async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '2s' });
  const t0 = Date.now();

  const published = dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 1);
  starts[0].finish();
  await published;

  expect(starts[0].at - t0).toBeLessThan(500); // the window is 2 s
  expect(Date.now() - t0).toBeLessThan(1_000);
  expect(dispatcher.batchingAccounts).toBe(0);
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

test("when an account publishes a burst while its batch is being started, then the burst is batched and starts as soon as that start is done; another account's does not wait", async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '2s' });
  const first = dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 1);

  const burst = [1, 2, 3, 4].map(() => target('acc_a'));
  const burstDone: Promise<void>[] = [];
  for (const t of burst) {
    burstDone.push(dispatcher.dispatchAll([t])); // separate publishes, in separate turns of the event loop
    await turn();
  }
  const other = dispatcher.dispatchAll([target('acc_b')]);
  await until(() => starts.length === 2);
  expect(starts[1].accountId).toBe('acc_b'); // not held by acc_a's start
  await new Promise((r) => setTimeout(r, 50));
  expect(starts).toHaveLength(2); // acc_a's burst is gathering

  const finishedFirst = Date.now();
  starts[0].finish();
  await first;
  await until(() => starts.length === 3);
  expect(starts[2]).toMatchObject({ accountId: 'acc_a', deliveryIds: burst.map((t) => t.id) });
  expect(starts[2].at - finishedFirst).toBeLessThan(500); // not the 2 s window
  starts[1].finish();
  starts[2].finish();
  await Promise.all([...burstDone, other]);
  expect(dispatcher.batchingAccounts).toBe(0);
});

test('when the previous start hangs, then the next batch gathers only for the window; a full batch starts at once', async () => {
  const { dispatcher, starts } = setup({ DISPATCH_BATCH_WINDOW: '100ms', DISPATCH_BATCH_MAX: '3' });
  void dispatcher.dispatchAll([target('acc_a')]);
  await until(() => starts.length === 1); // never finishes

  const t0 = Date.now();
  const late = target('acc_a');
  void dispatcher.dispatchAll([late]);
  await until(() => starts.length === 2);
  expect(starts[1].deliveryIds).toEqual([late.id]);
  expect(starts[1].at - t0).toBeGreaterThanOrEqual(90);

  // starts[1] hangs too: three more fill a batch, which starts without waiting for the window.
  const full = [1, 2, 3].map(() => target('acc_a'));
  const t1 = Date.now();
  void dispatcher.dispatchAll(full);
  await until(() => starts.length === 3);
  expect(starts[2].deliveryIds).toEqual(full.map((t) => t.id));
  expect(starts[2].at - t1).toBeLessThan(90);
  starts.forEach((s) => s.finish());
});
