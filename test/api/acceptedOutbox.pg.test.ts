import { openPostgres, type Database } from '../../src/db/database';
import { takeAccepted, undispatched } from '../../src/db/deliveries';
import { AcceptedNotifier, AcceptedTaker, parsePayload, payloads } from '../../src/services/acceptedOutbox';
import type { DispatchTarget } from '../../src/services/dispatcher';
import { silentLogger } from '../../src/logger';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { freshDatabase } from '../helpers/db';
import { waitFor } from '../helpers/receiver';

// Real Postgres only (*.pg.test.ts): the outbox of separate api and worker processes
// (src/services/acceptedOutbox.ts, DISPATCH_OUTBOX), on LISTEN/NOTIFY and row locks.
let fresh: Awaited<ReturnType<typeof freshDatabase>>;
const opened: Database[] = [];
beforeAll(async () => {
  fresh = await freshDatabase();
});
afterAll(async () => {
  await Promise.all(opened.map((db) => db.close()));
  await fresh?.drop();
});

async function open(): Promise<Database> {
  const db = await openPostgres(fresh.url!, 4);
  opened.push(db);
  return db;
}

async function accepted(n: number): Promise<{ accountId: string; ids: string[] }> {
  const { account, endpoint } = await accountWithEndpoint(fresh.db, 'https://hooks.example.com/outbox');
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await storedDelivery(fresh.db, account.id, endpoint.id)).deliveryId);
  return { accountId: account.id, ids };
}

const target = (id: string, accountId: string): DispatchTarget => ({ id, series: 1, meta: { accountId, endpointId: 'ep', eventType: 'referrer_added', url: 'https://x' } });

/** A dispatcher that records what it was given. */
function recording() {
  const got: DispatchTarget[] = [];
  return { got, dispatchAll: (targets: DispatchTarget[]) => (got.push(...targets), Promise.resolve()) };
}

test('when two workers take the same announced deliveries at once, then each delivery is taken by exactly one, with what its dispatch needs', async () => {
  const { accountId, ids } = await accepted(60);
  const [a, b] = [await open(), await open()];

  const [fromA, fromB] = await Promise.all([takeAccepted(a, ids, 15_000), takeAccepted(b, [...ids].reverse(), 15_000)]);

  const taken = [...fromA, ...fromB].map((t) => t.id);
  expect(new Set(taken).size).toBe(taken.length); // none twice
  expect(new Set(taken)).toEqual(new Set(ids));
  expect([...fromA, ...fromB][0]).toMatchObject({ series: 1, meta: { accountId, eventType: 'referrer_added', url: 'https://hooks.example.com/outbox' } });
  // Taken again while held: nothing.
  expect(await takeAccepted(a, ids, 15_000)).toEqual([]);
});

test('when a worker took deliveries and died, then the reconciler skips them while they are held and finds them once the hold has passed', async () => {
  const { accountId, ids } = await accepted(3);
  expect((await undispatched(fresh.db, 0, 100, accountId)).map((d) => d.id).sort()).toEqual([...ids].sort());

  expect(await takeAccepted(fresh.db, ids, 1_000)).toHaveLength(3);

  expect(await undispatched(fresh.db, 0, 100, accountId)).toEqual([]);
  await new Promise((r) => setTimeout(r, 1_200));
  expect((await undispatched(fresh.db, 0, 100, accountId)).map((d) => d.id).sort()).toEqual([...ids].sort());
  // And another worker may take them now.
  expect(await takeAccepted(fresh.db, ids, 15_000)).toHaveLength(3);
});

test('when an API process announces accepted deliveries, then a listening worker takes and dispatches each once, also after its listening connection was cut', async () => {
  const api = await open();
  const worker = await open();
  const dispatcher = recording();
  const taker = new AcceptedTaker(worker, dispatcher, silentLogger);
  expect(await taker.start()).toBe(true);
  const notifier = new AcceptedNotifier(api, silentLogger);
  try {
    const first = await accepted(5);
    notifier.notify(first.ids.map((id) => target(id, first.accountId)));
    await waitFor(() => (dispatcher.got.length >= 5 ? true : undefined), 'the first deliveries to be taken');
    expect(dispatcher.got.map((t) => t.id).sort()).toEqual([...first.ids].sort());

    // The server drops the listening connection (a restart, a cut): it listens again within a few seconds.
    const cut = await fresh.db.query<{ n: number }>(
      `select count(*)::int as n from (select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'listen rr_accepted%') t`,
    );
    expect(cut[0].n).toBe(1);
    await waitFor(
      async () =>
        (await fresh.db.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and query ilike 'listen rr_accepted%'`))[0].n === 1
          ? true
          : undefined,
      'the worker to listen again',
    );
    const second = await accepted(3);
    notifier.notify(second.ids.map((id) => ({ id, series: 1 })));
    notifier.notify(first.ids.map((id) => target(id, first.accountId))); // announced again: taken already, not dispatched twice
    await waitFor(() => (dispatcher.got.length >= 8 ? true : undefined), 'the deliveries announced after the cut to be taken');
    await new Promise((r) => setTimeout(r, 300));
    expect(dispatcher.got.map((t) => t.id).sort()).toEqual([...first.ids, ...second.ids].sort());
  } finally {
    await taker.stop();
  }
});

test("when an account has a long backlog waiting in the worker, then its announced deliveries are not taken until it shrinks, and another account's are taken meanwhile", async () => {
  const worker = await open();
  const dispatcher = recording();
  let release!: () => void;
  const shrunk = new Promise<void>((resolve) => (release = resolve));
  const flooding = await accepted(30);
  const quiet = await accepted(2);
  let backlogged = true;
  const taker = new AcceptedTaker(worker, dispatcher, silentLogger, { backlog: (accountId) => (backlogged && accountId === flooding.accountId ? shrunk : undefined) });

  taker.offer(new Map([[flooding.accountId, flooding.ids]]));
  taker.offer(new Map([[quiet.accountId, quiet.ids]]));

  await waitFor(() => (dispatcher.got.length >= 2 ? true : undefined), "the quiet account's deliveries to be taken");
  await new Promise((r) => setTimeout(r, 200));
  expect(dispatcher.got.map((t) => t.id).sort()).toEqual([...quiet.ids].sort());
  expect(taker.waiting).toBe(30);
  // Not taken: free for another worker, and not held from the reconciler.
  expect(await undispatched(fresh.db, 0, 100, flooding.accountId)).toHaveLength(30);

  backlogged = false;
  release();
  await waitFor(() => (dispatcher.got.length >= 32 ? true : undefined), "the flooding account's deliveries to be taken once its backlog shrank");
  expect(new Set(dispatcher.got.map((t) => t.id)).size).toBe(32);
  expect(taker.waiting).toBe(0);
  await taker.stop();
});

test('when more deliveries of a held account are announced than a worker keeps, then once it has room the ones let go are read back from the database and taken too, each once', async () => {
  const worker = await open();
  const dispatcher = recording();
  let release!: () => void;
  const shrunk = new Promise<void>((resolve) => (release = resolve));
  let backlogged = true;
  const flooding = await accepted(25);
  // Keeps at most 10 announced ids per account (PENDING_PER_ACCOUNT, 10,000 in production).
  const taker = new AcceptedTaker(worker, dispatcher, silentLogger, { backlog: () => (backlogged ? shrunk : undefined) }, 15_000, 10);

  taker.offer(new Map([[flooding.accountId, flooding.ids]]));
  expect(taker.waiting).toBe(10); // the 15 oldest let go here

  backlogged = false;
  release();
  await waitFor(() => (dispatcher.got.length >= 25 ? true : undefined), 'every delivery of the account to be taken, those let go included');
  expect(new Set(dispatcher.got.map((t) => t.id))).toEqual(new Set(flooding.ids));
  expect(dispatcher.got).toHaveLength(25); // none twice
  await new Promise((r) => setTimeout(r, 200));
  expect(dispatcher.got).toHaveLength(25);
  expect(taker.waiting).toBe(0);
  await taker.stop();
});

test('a stopping worker does not wait for a backlog to shrink', async () => {
  const flooding = await accepted(3);
  const taker = new AcceptedTaker(await open(), recording(), silentLogger, { backlog: () => new Promise<void>(() => undefined) });
  taker.offer(new Map([[flooding.accountId, flooding.ids]]));
  await taker.stop(); // resolves: the take loop leaves its wait
  expect(taker.waiting).toBe(3);
});

test('a notification payload stays under the 8,000 bytes Postgres allows: ids split over several, each with its account, none lost', () => {
  const byAccount = new Map<string, string[]>();
  for (let a = 0; a < 3; a++)
    byAccount.set(
      `acc_01m8hfxa8v685f33bdwrcsj9b${a}`,
      Array.from({ length: 400 }, (_, i) => `dlv_01xefntrrmee2b61554c${a}${String(i).padStart(5, '0')}`),
    );
  const out = payloads(byAccount);
  expect(out.length).toBeGreaterThan(1);
  for (const p of out) expect(Buffer.byteLength(p)).toBeLessThan(8_000);
  const back = new Map<string, string[]>();
  for (const p of out) for (const [accountId, ids] of parsePayload(p)) back.set(accountId, [...(back.get(accountId) ?? []), ...ids]);
  expect(back).toEqual(byAccount);
  expect(parsePayload(payloads(new Map([['acc_1', ['dlv_1', 'dlv_2']]]))[0])).toEqual(new Map([['acc_1', ['dlv_1', 'dlv_2']]]));
});
