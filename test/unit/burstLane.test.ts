import { BurstLanes, bulkTaskQueue } from '../../src/services/burstLane';

test('when an account publishes at a quiet rate, then every batch stays in the main lane', () => {
  const lanes = new BurstLanes(200, 2_000);
  for (let t = 0; t < 10_000; t += 100) expect(lanes.take('acc_quiet', 1, t)).toBe('main');
});

test("when an account bursts past the rate, then its batches go to the bulk lane and another account's stay in the main lane", () => {
  const lanes = new BurstLanes(200, 2_000);
  // 100 deliveries every 100 ms = 1,000/s: the window's allowance (400) is used up by the fifth batch.
  const lanesOfA = [0, 100, 200, 300, 400, 500].map((t) => lanes.take('acc_a', 100, t));
  expect(lanesOfA).toEqual(['main', 'main', 'main', 'main', 'bulk', 'bulk']);
  expect(lanes.take('acc_b', 1, 550)).toBe('main');
  expect(lanes.take('acc_a', 100, 600)).toBe('bulk');
});

test('when a bursting account has been quiet for the window, then it is back in the main lane and forgotten', () => {
  const lanes = new BurstLanes(200, 2_000);
  for (let t = 0; t < 1_000; t += 100) lanes.take('acc_a', 100, t);
  expect(lanes.take('acc_a', 100, 1_000)).toBe('bulk');
  expect(lanes.take('acc_a', 1, 3_100)).toBe('main');
  lanes.take('acc_b', 1, 9_000); // a later call sweeps the idle ones
  expect(lanes.tracked).toBe(1);
});

test('when the main lane keeps up, then a bursting account stays in it, and goes to the bulk lane once that lane is busy', () => {
  let busy = false;
  const asked: number[] = [];
  const lanes = new BurstLanes(200, 2_000, () => {
    asked.push(1);
    return busy;
  });
  // 1,000/s, as in the test above: past the rate from the fifth batch on.
  const lanesOfA = [0, 100, 200, 300, 400, 500].map((t) => lanes.take('acc_a', 100, t));
  expect(lanesOfA).toEqual(['main', 'main', 'main', 'main', 'main', 'main']);
  expect(asked).toHaveLength(2); // asked only for the batches past the rate
  busy = true;
  expect(lanes.take('acc_a', 100, 600)).toBe('bulk');
  expect(lanes.take('acc_b', 1, 650)).toBe('main'); // a quiet account never leaves the main lane
  busy = false;
  expect(lanes.take('acc_a', 100, 700)).toBe('main');
});

test('when the bulk lane is named, then it is the task queue with a -bulk suffix', () => {
  expect(bulkTaskQueue('webhook-deliveries')).toBe('webhook-deliveries-bulk');
});
