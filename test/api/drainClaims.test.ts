import type { Database } from '../../src/db/database';
import { claimDrainPage } from '../../src/db/drain';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { freshDatabase } from '../helpers/db';

// Which parked deliveries an endpoint's recovery drain may claim (src/db/drain.ts), straight on
// the database; runs on PGlite and on a real Postgres (the api:pglite and api:postgres projects).
let db: Database;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ db, drop } = await freshDatabase());
});
afterAll(async () => {
  await drop?.();
});

test('when a drain page is claimed, then it takes parked deliveries waking more than 5 s later or overdue by more than 5 s, oldest first, and leaves those waking within 5 s, in flight elsewhere or finished', async () => {
  const { account, endpoint } = await accountWithEndpoint(db, 'https://127.0.0.1/hook');
  const now = Date.now();
  const t0 = new Date(now - 60_000);
  const make = async (name: string, i: number, set: string, params: unknown[] = []) => {
    const { deliveryId } = await storedDelivery(db, account.id, endpoint.id, 'referrer_added', new Date(t0.getTime() + i));
    await db.query(`update deliveries set workflow_id = 'delivery-' || id where id = $1`, [deliveryId]);
    await db.query(`update deliveries set ${set} where id = $1`, [deliveryId, ...params]);
    return [name, deliveryId] as const;
  };
  const at = (ms: number) => new Date(now + ms);
  const ids = Object.fromEntries([
    await make('parkedLong', 0, 'next_attempt_at = $2', [at(90_000)]),
    await make('wakingSoon', 1, 'next_attempt_at = $2', [at(3_000)]),
    await make('overdue', 2, 'next_attempt_at = $2', [at(-40_000)]),
    await make('justDue', 3, 'next_attempt_at = $2', [at(-2_000)]),
    await make('noWakeUp', 4, 'next_attempt_at = null'),
    await make('inBatch', 5, `workflow_id = 'batch-x', next_attempt_at = $2`, [at(90_000)]),
    await make('otherDrain', 6, `workflow_id = 'drain-other', lease_until = $2, next_attempt_at = $2`, [at(60_000)]),
    await make('delivered', 7, `status = 'delivered', next_attempt_at = $2`, [at(90_000)]),
  ]);

  const claimed = await claimDrainPage(db, { endpointId: endpoint.id, owner: `drain-${endpoint.id}`, nowMs: now, leaseMs: 120_000, limit: 100 });

  const names = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
  expect(claimed.map((c) => names[c.id]).sort()).toEqual(['noWakeUp', 'overdue', 'parkedLong']);
  const rows = await db.query<{ id: string; workflow_id: string }>(`select id, workflow_id from deliveries where id = any($1::text[])`, [claimed.map((c) => c.id)]);
  for (const r of rows) expect(r.workflow_id).toBe(`drain-${endpoint.id}`);
  // Oldest first; the next page (its cursor past this one) finds nothing more.
  expect(claimed.map((c) => names[c.id])).toEqual(['parkedLong', 'overdue', 'noWakeUp']);
  const last = await db.query<{ created_at: Date; id: string }>(`select created_at, id from deliveries where id = $1`, [ids.noWakeUp]);
  expect(
    await claimDrainPage(db, {
      endpointId: endpoint.id,
      owner: `drain-${endpoint.id}`,
      nowMs: now,
      leaseMs: 120_000,
      limit: 100,
      after: { createdAt: new Date(last[0].created_at).toISOString(), id: last[0].id },
    }),
  ).toEqual([]);
});

test('when a drain sweeps again from the oldest, then it leaves the deliveries attempted since its run began (a failed one keeps its own back-off) and takes the others', async () => {
  const { account, endpoint } = await accountWithEndpoint(db, 'https://127.0.0.1/hook');
  const now = Date.now();
  const runStartedMs = now - 10_000;
  const parked = async (lastAttemptAt: Date | null) => {
    const { deliveryId } = await storedDelivery(db, account.id, endpoint.id, 'referrer_added', new Date(now - 60_000));
    await db.query(`update deliveries set workflow_id = 'delivery-' || id where id = $1`, [deliveryId]);
    await db.query(`update deliveries set next_attempt_at = $2, last_attempt_at = $3 where id = $1`, [deliveryId, new Date(now + 90_000), lastAttemptAt]);
    return deliveryId;
  };
  const failedInThisRun = await parked(new Date(now - 2_000));
  const failedBefore = await parked(new Date(now - 600_000));
  const neverTried = await parked(null);
  const q = { endpointId: endpoint.id, owner: `drain-${endpoint.id}`, nowMs: now, leaseMs: 120_000, limit: 100 };

  const swept = await claimDrainPage(db, { ...q, attemptedBeforeMs: runStartedMs });

  expect(swept.map((c) => c.id).sort()).toEqual([failedBefore, neverTried].sort());
  // Without the sweep's bound (a first pass), the one attempted a moment ago is claimable too.
  expect((await claimDrainPage(db, q)).map((c) => c.id).sort()).toEqual([failedInThisRun, failedBefore, neverTried].sort());
});
