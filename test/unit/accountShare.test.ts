import { AccountShare } from '../../src/services/accountShare';

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

test('when one account has more tasks than its share, then only its share runs and another account runs at once', async () => {
  const share = new AccountShare(2);
  const gates = [gate(), gate(), gate(), gate()];
  const started: string[] = [];
  const a = gates.map((g, i) =>
    share.run('acc_a', async () => {
      started.push(`a${i}`);
      await g.opened;
      return i;
    }),
  );
  await new Promise((r) => setImmediate(r));
  expect(started).toEqual(['a0', 'a1']);
  expect(share.running('acc_a')).toBe(2);

  // B is not behind A's queue.
  await expect(share.run('acc_b', async () => 'b')).resolves.toBe('b');
  expect(started).toEqual(['a0', 'a1']);

  // A's waiting tasks start in order as its running ones finish.
  gates[1].open();
  await new Promise((r) => setImmediate(r));
  expect(started).toEqual(['a0', 'a1', 'a2']);
  gates.forEach((g) => g.open());
  await expect(Promise.all(a)).resolves.toEqual([0, 1, 2, 3]);
  expect(started).toEqual(['a0', 'a1', 'a2', 'a3']);
  expect(share.running('acc_a')).toBe(0);
});

test('when a task fails, then its turn still passes on to the next waiting task of the account', async () => {
  const share = new AccountShare(1);
  const first = share.run('acc_a', async () => {
    throw new Error('boom');
  });
  const second = share.run('acc_a', async () => 'next');
  await expect(first).rejects.toThrow('boom');
  await expect(second).resolves.toBe('next');
  expect(share.running('acc_a')).toBe(0);
});
