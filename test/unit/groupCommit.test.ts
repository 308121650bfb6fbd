import { GroupCommit } from '../../src/services/groupCommit';

const turn = () => new Promise((r) => setImmediate(r));

function recorder(failWhen: (items: number[]) => boolean = () => false) {
  const runs: number[][] = [];
  let release: (() => void) | undefined;
  let hold = false;
  const q = new GroupCommit<number, string>(
    async (i) => {
      runs.push([i]);
      if (hold) await new Promise<void>((r) => (release = r));
      if (i < 0) throw new Error(`bad item ${i}`);
      return `one:${i}`;
    },
    async (items) => {
      runs.push(items);
      if (hold) await new Promise<void>((r) => (release = r));
      if (failWhen(items)) throw new Error('batch failed');
      return items.map((i) => `many:${i}`);
    },
    { maxBatch: 3, maxInFlight: 1 },
  );
  return { q, runs, holdNext: () => (hold = true), release: () => ((hold = false), release?.()) };
}

test('when items are submitted in one turn, then they go in one run and each gets its own result', async () => {
  const { q, runs } = recorder();
  await expect(Promise.all([q.submit(1), q.submit(2)])).resolves.toEqual(['many:1', 'many:2']);
  expect(runs).toEqual([[1, 2]]);
});

test('when one item is submitted alone, then it runs alone through the single path', async () => {
  const { q, runs } = recorder();
  await expect(q.submit(7)).resolves.toBe('one:7');
  expect(runs).toEqual([[7]]);
});

test('when items arrive while a run is in flight, then they wait and share the next runs, at most maxBatch each, in order', async () => {
  const r = recorder();
  r.holdNext();
  const first = r.q.submit(1);
  await turn();
  expect(r.runs).toEqual([[1]]);
  const later = [2, 3, 4, 5].map((i) => r.q.submit(i));
  await turn();
  expect(r.runs).toEqual([[1]]); // nothing else starts while the run is in flight
  r.release();
  await expect(first).resolves.toBe('one:1');
  await expect(Promise.all(later)).resolves.toEqual(['many:2', 'many:3', 'many:4', 'one:5']);
  expect(r.runs).toEqual([[1], [2, 3, 4], [5]]);
});

test('when a run of several fails, then each item is retried alone and only the bad one fails', async () => {
  const { q, runs } = recorder((items) => items.includes(-1));
  const results = await Promise.allSettled([q.submit(1), q.submit(-1), q.submit(2)]);
  expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['one:1', 'bad item -1', 'one:2']);
  expect(runs).toEqual([[1, -1, 2], [1], [-1], [2]]);
});
