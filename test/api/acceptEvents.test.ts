import type { Database } from '../../src/db/database';
import { acceptEvent, acceptEvents, type EventToAccept } from '../../src/db/events';
import { createEndpoint } from '../../src/db/endpoints';
import { accountWithEndpoint } from '../helpers/fixtures';
import { freshDatabase } from '../helpers/db';

// The group-committed acceptance (src/db/events.ts acceptEvents) stores what one acceptEvent per event
// stores; runs on PGlite and on a real Postgres (the api:pglite and api:postgres projects).
let db: Database;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ db, drop } = await freshDatabase());
});
afterAll(async () => {
  await drop?.();
});

let n = 0;
const event = (accountId: string, over: Partial<EventToAccept> = {}): EventToAccept => {
  n++;
  return {
    id: `evt_batch_${n}`,
    accountId,
    eventType: 'referrer_added',
    body: `{"n":${n}}`,
    requestHash: `h${n}`,
    isTest: false,
    createdAt: new Date(Date.now() - 1000 + n),
    deliveryIdPrefix: `dlv_batch_${n}_`,
    ...over,
  };
};

const stored = async (eventIds: string[]) =>
  db.query<{ event_id: string; endpoint_id: string; account_id: string; event_type: string }>(
    `select d.event_id, d.endpoint_id, d.account_id, d.event_type from deliveries d where d.event_id = any($1::text[]) order by d.event_id, d.endpoint_id`,
    [eventIds],
  );

test('when several events are accepted in one statement, then each gets the deliveries and answer one acceptEvent would give it', async () => {
  const paid = await accountWithEndpoint(db, 'https://127.0.0.1/a');
  const second = await createEndpoint(db, paid.account.id, { url: 'https://127.0.0.1/b', eventTypes: ['referee_added'] });
  const free = await accountWithEndpoint(db, 'https://127.0.0.1/c', 'free');

  const batch = [
    event(paid.account.id), // fans out to the one subscribed endpoint
    event(paid.account.id, { eventType: 'referee_added' }), // both endpoints
    event('acc_does_not_exist'),
    event(free.account.id), // free plan: stored, nothing delivered
    event(paid.account.id, { onlyEndpointId: second.id }), // a test send to one endpoint, whatever it subscribes to
    event(paid.account.id, { idempotencyKey: 'k-1' }),
    event(paid.account.id, { idempotencyKey: 'k-1' }), // the same key in the same statement: the first wins
  ];
  const many = await acceptEvents(db, batch);

  expect(many.map((a) => [a.accountFound, a.eventId ?? null, a.deliveries.map((d) => d.endpointId).sort()])).toEqual([
    [true, batch[0].id, [paid.endpoint.id]],
    [true, batch[1].id, [paid.endpoint.id, second.id].sort()],
    [false, null, []],
    [true, batch[3].id, []],
    [true, batch[4].id, [second.id]],
    [true, batch[5].id, [paid.endpoint.id]],
    [true, null, []],
  ]);
  for (const [i, a] of many.entries()) for (const d of a.deliveries) expect(d.id.startsWith(batch[i].deliveryIdPrefix)).toBe(true);
  expect(many[1].deliveries.find((d) => d.endpointId === second.id)?.url).toBe('https://127.0.0.1/b');

  // The rows are those one acceptEvent per event would have written.
  const alone = batch.slice(0, 6).map((e) => ({ ...e, id: `${e.id}_alone`, deliveryIdPrefix: `${e.deliveryIdPrefix}alone_`, idempotencyKey: e.idempotencyKey && 'k-2' }));
  const one = [];
  for (const e of alone) one.push(await acceptEvent(db, e));
  expect(one.map((a) => [a.accountFound, a.deliveries.length])).toEqual(many.slice(0, 6).map((a) => [a.accountFound, a.deliveries.length]));
  const strip = (rows: Awaited<ReturnType<typeof stored>>, suffix: string) => rows.map((r) => ({ ...r, event_id: r.event_id.replace(suffix, '') }));
  expect(strip(await stored(alone.map((e) => e.id)), '_alone')).toEqual(await stored(batch.map((e) => e.id)));
});

test('when one statement stores events of two accounts, then neither sees the other endpoint', async () => {
  const a = await accountWithEndpoint(db, 'https://127.0.0.1/x');
  const b = await accountWithEndpoint(db, 'https://127.0.0.1/y');
  const [ea, eb] = await acceptEvents(db, [event(a.account.id), event(b.account.id)]);
  expect(ea.deliveries.map((d) => d.endpointId)).toEqual([a.endpoint.id]);
  expect(eb.deliveries.map((d) => d.endpointId)).toEqual([b.endpoint.id]);
});
