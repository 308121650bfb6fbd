import type { InlineRun } from '../../src/activities/attemptLease';
import type { RetryStartRequest } from '../../src/activities/deliveryDeps';
import type { PostBatchInput, PostBatchResult } from '../../src/activities/firstAttemptBatch';
import type { Queryable } from '../../src/db/database';
import { silentLogger } from '../../src/logger';
import { InlineFirstAttempts, type InlineBatch } from '../../src/services/inlineFirstAttempts';

const schedule = { initialIntervalMs: 1_000, backoffCoefficient: 2, maximumIntervalMs: 60_000, windowMs: 3_600_000, jitter: 0 };
const batch = (accountId: string, ids: string[]): InlineBatch => ({
  accountId,
  deliveries: ids.map((deliveryId) => ({ deliveryId, series: 1 })),
  schedule,
  attemptTimeoutMs: 5_000,
});

/** A sender whose batches finish when the test says so. */
function controlledSender(result: (input: PostBatchInput) => PostBatchResult | Error = () => ({ delivered: 1, finished: 0, skipped: 0, retrying: [] })) {
  const open: { input: PostBatchInput; run: InlineRun; finish: () => void }[] = [];
  const starts: RetryStartRequest[] = [];
  let startFailures = 0;
  return {
    open,
    starts,
    failStarts(n: number) {
      startFailures = n;
    },
    sender: {
      postBatch: (input: PostBatchInput, run: InlineRun) =>
        new Promise<PostBatchResult>((resolve, reject) => {
          open.push({
            input,
            run,
            finish: () => {
              const r = result(input);
              if (r instanceof Error) reject(r);
              else resolve(r);
            },
          });
        }),
      startRetries: async (req: RetryStartRequest) => {
        if (startFailures-- > 0) throw new Error('Temporal unreachable');
        starts.push(req);
      },
    },
  };
}

/** No batch of these tests skips a delivery: nothing reaches the database. */
const noDb = { query: () => Promise.reject(new Error('no query expected')) } as unknown as Queryable;

const settle = () => new Promise((r) => setImmediate(r));

test('when an account has its share of batches running, then its next batch waits here behind its own; another account runs at once while there is room, and goes to a workflow when others fill the process', async () => {
  const s = controlledSender();
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger, { total: 3, perAccount: 2 });
  expect(inline.tryRun(batch('a', ['d1']))).toBe(true);
  expect(inline.tryRun(batch('a', ['d2']))).toBe(true);
  expect(inline.hasRoom('a')).toBe(false);
  expect(inline.tryRun(batch('a', ['d3']))).toBe(true); // waits
  expect(inline.batchesInFlight).toBe(2);
  expect(inline.deliveriesWaiting).toBe(1);
  expect(inline.tryRun(batch('b', ['d4']))).toBe(true); // runs at once
  expect(inline.batchesInFlight).toBe(3);
  expect(inline.tryRun(batch('c', ['d5']))).toBe(false); // the others fill the process: a workflow
  expect(s.open.map((o) => o.input.deliveries[0].deliveryId)).toEqual(['d1', 'd2', 'd4']);

  s.open[0].finish();
  await settle();
  await settle();
  expect(inline.batchesInFlight).toBe(3); // d3 took the room
  expect(inline.deliveriesWaiting).toBe(0);
  expect(s.open[3].input.deliveries.map((d) => d.deliveryId)).toEqual(['d3']);
  // Each run claims as an owner of its own, never a workflow's id.
  expect(new Set(s.open.map((o) => o.run.owner)).size).toBe(4);
  for (const o of s.open) expect(o.run.owner).toMatch(/^inline-d\d-[0-9a-f]{8}$/);
});

test('when room frees, then the waiting accounts take it in turn, each with its waiting batches merged up to the batch size', async () => {
  const s = controlledSender();
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger, { total: 2, perAccount: 1, mergedBatch: 3 });
  inline.tryRun(batch('flood', ['f0']));
  inline.tryRun(batch('quiet', ['q0']));
  for (const ids of [['f1', 'f2'], ['f3'], ['f4'], ['f5', 'f6'], ['f7', 'f8']]) inline.tryRun(batch('flood', ids));
  inline.tryRun(batch('quiet', ['q1']));
  expect(inline.deliveriesWaiting).toBe(9);
  const finish = async (i: number) => {
    s.open[i].finish();
    await settle();
    await settle();
    return s.open[s.open.length - 1].input.deliveries.map((d) => d.deliveryId);
  };
  expect(await finish(0)).toEqual(['f1', 'f2', 'f3']); // merged up to 3
  expect(await finish(1)).toEqual(['q1']);
  expect(await finish(2)).toEqual(['f4', 'f5', 'f6']);
  expect(await finish(4)).toEqual(['f7', 'f8']); // whole batches only
  expect(inline.deliveriesWaiting).toBe(0);
});

test('when a delivery is dispatched again while it waits or runs here (the reconciler), then it is not taken twice', async () => {
  const s = controlledSender();
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger, { total: 1, perAccount: 1 });
  inline.tryRun(batch('a', ['d1']));
  inline.tryRun(batch('a', ['d2', 'd3']));
  expect(inline.tryRun(batch('a', ['d1', 'd2', 'd9']))).toBe(true);
  expect(inline.deliveriesWaiting).toBe(3); // d2, d3, d9
  s.open[0].finish();
  await settle();
  await settle();
  expect(s.open[1].input.deliveries.map((d) => d.deliveryId)).toEqual(['d2', 'd3', 'd9']);
});

test('when an account has as many deliveries waiting as it may, or all accounts together, then its next batch is left to a workflow (false)', async () => {
  const s = controlledSender();
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger, { total: 2, perAccount: 1, queuedPerAccount: 3, queuedTotal: 5 });
  expect(inline.tryRun(batch('a', ['d1']))).toBe(true);
  expect(inline.tryRun(batch('a', ['d2', 'd3']))).toBe(true);
  expect(inline.tryRun(batch('a', ['d4', 'd5']))).toBe(false); // 4 > 3
  expect(inline.tryRun(batch('a', ['d6']))).toBe(true); // 3
  expect(inline.tryRun(batch('b', ['d7']))).toBe(true); // runs
  expect(inline.tryRun(batch('b', ['d8', 'd9']))).toBe(true); // waits: 5 in all
  expect(inline.tryRun(batch('b', ['d10']))).toBe(false); // 6 > 5
  expect(inline.deliveriesWaiting).toBe(5);
});

test('when a batch waited longer than allowed (slow receivers hold the room), then it is handed to a batch workflow, merged', async () => {
  const s = controlledSender();
  const handed: string[][] = [];
  const inline = new InlineFirstAttempts(
    s.sender,
    noDb,
    silentLogger,
    { total: 1, perAccount: 1, maxWaitMs: 100 },
    async (b) => void handed.push(b.deliveries.map((d) => d.deliveryId)),
  );
  inline.tryRun(batch('a', ['d1']));
  inline.tryRun(batch('a', ['d2']));
  inline.tryRun(batch('a', ['d3']));
  await new Promise((r) => setTimeout(r, 250));
  expect(handed).toEqual([['d2', 'd3']]);
  expect(inline.deliveriesWaiting).toBe(0);
  s.open[0].finish();
  await inline.shutdown();
  expect(s.open).toHaveLength(1);
});

test('when a batch hands deliveries over, then their retry workflows are started with the batch as the first attempt (a failed start is tried again)', async () => {
  const s = controlledSender((input) => ({ delivered: 0, finished: 0, skipped: 0, retrying: input.deliveries.map((d) => ({ ...d, delayMs: 1_000, lastError: 'HTTP 503' })) }));
  s.failStarts(1);
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger);
  inline.tryRun(batch('a', ['d1', 'd2']));
  s.open[0].finish();
  await inline.shutdown();
  expect(s.starts).toHaveLength(1);
  expect(s.starts[0].batchId).toBe(s.open[0].run.owner);
  expect(s.starts[0].retrying.map((r) => r.deliveryId)).toEqual(['d1', 'd2']);
  expect(s.starts[0].windowEndsAtMs).toBeGreaterThan(Date.now());
});

test('when the batch itself fails (the database, not a receiver), then every delivery is handed to its retry workflow after the first back-off', async () => {
  const s = controlledSender(() => new Error('connection reset'));
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger);
  inline.tryRun(batch('a', ['d1', 'd2']));
  s.open[0].finish();
  await inline.shutdown();
  expect(s.starts[0].retrying).toEqual([
    { deliveryId: 'd1', series: 1, delayMs: 1_000 },
    { deliveryId: 'd2', series: 1, delayMs: 1_000 },
  ]);
});

test('when the process shuts down, then running batches see their signal aborted, shutdown waits for them, and no new batch runs here', async () => {
  const s = controlledSender();
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger);
  inline.tryRun(batch('a', ['d1']));
  let stopped = false;
  const stopping = inline.shutdown().then(() => (stopped = true));
  await settle();
  expect(s.open[0].run.signal.aborted).toBe(true);
  expect(stopped).toBe(false);
  expect(inline.tryRun(batch('b', ['d2']))).toBe(false);
  s.open[0].finish();
  await stopping;
  expect(inline.batchesInFlight).toBe(0);
});

test('when the process shuts down with batches waiting, then they are handed to batch workflows (Temporal keeps them across the restart) and never run here', async () => {
  const s = controlledSender();
  const handed: string[][] = [];
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger, { total: 1, perAccount: 1 }, async (b) => void handed.push(b.deliveries.map((d) => d.deliveryId)));
  inline.tryRun(batch('a', ['d1']));
  inline.tryRun(batch('a', ['d2']));
  expect(inline.deliveriesWaiting).toBe(1);
  const stopping = inline.shutdown();
  expect(inline.deliveriesWaiting).toBe(0);
  s.open[0].finish();
  await stopping;
  expect(handed).toEqual([['d2']]);
  expect(s.open).toHaveLength(1);
});

test("when more than the mark of an account's deliveries wait here, then its publishes are held (backlog) until fewer do; another account's are not", async () => {
  const s = controlledSender();
  const inline = new InlineFirstAttempts(s.sender, noDb, silentLogger, { total: 2, perAccount: 1, queueMark: 3, mergedBatch: 2 });
  expect(inline.tryRun(batch('a', ['d1']))).toBe(true); // runs
  expect(inline.tryRun(batch('a', ['d2', 'd3']))).toBe(true); // waits: 2
  expect(inline.backlog('a')).toBeUndefined();
  expect(inline.tryRun(batch('a', ['d4', 'd5']))).toBe(true); // waits: 4, past the mark
  const held = inline.backlog('a');
  expect(held).toBeInstanceOf(Promise);
  expect(inline.backlog('b')).toBeUndefined();
  let released = false;
  void held!.then(() => (released = true));
  await settle();
  expect(released).toBe(false);

  s.open[0].finish(); // d2 and d3 take the room (merged up to 2): 2 wait, under the mark
  await settle();
  await settle();
  expect(inline.deliveriesWaiting).toBe(2);
  expect(released).toBe(true);
  s.open.forEach((o) => o.finish());
  await inline.shutdown();
});
