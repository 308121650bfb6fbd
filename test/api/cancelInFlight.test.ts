import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { OutsideObserver, type ObservedRequest } from '../helpers/outsideObserver';
import { waitFor } from '../helpers/receiver';

// The outside review's reproduction: one account, 10 endpoints on one loopback receiver, a burst
// of events, then every endpoint deleted (or disabled, or the account downgraded) while its
// deliveries are being sent. Once the API has answered, no request may start any more; what was
// in flight may finish and is then logged as what happened. The receiver and the API client are
// one outside observer (a thread of its own, see OutsideObserver), like the reviewer's.
let h: Harness;
let receiver: OutsideObserver;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
beforeEach(async () => {
  receiver = await new OutsideObserver().start();
});
afterEach(async () => {
  await receiver.stop();
});

const ENDPOINTS = 10;
type Stop = 'delete' | 'disable' | 'downgrade';

const timed = (method: string, path: string, token: string, body?: unknown) => receiver.call(h.baseUrl, method, path, token, body);

async function burstThenStop(stop: Stop, replyDelayMs: number, events: number) {
  const account = await newAccount(h);
  const endpointIds: string[] = [];
  for (let i = 0; i < ENDPOINTS; i++) {
    const ep = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: `${receiver.url}/${i}`, eventTypes: ['referrer_added'] } });
    expect(ep.status).toBe(201);
    endpointIds.push(ep.body.id);
  }
  await receiver.replyAfter(replyDelayMs);

  // The stop lands in the middle of the burst (a fast receiver gets it all within a few hundred
  // ms): events still being published, their deliveries claimed and sent.
  const publishing = Promise.all(
    Array.from({ length: events }, (_, n) => h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(n) } })),
  );
  await waitFor(async () => (await receiver.requests()).length > 0 || undefined, 'the first request', 30_000, 5);
  if (replyDelayMs > 0) await new Promise((r) => setTimeout(r, 100));

  // The answer time per endpoint: a request to it must not start after this.
  const answeredAt = new Map<number, number>();
  if (stop === 'downgrade') {
    const res = await timed('PATCH', `/v1/accounts/${account.id}`, h.adminToken, { plan: 'free' });
    expect(res.status).toBe(200);
    endpointIds.forEach((_, i) => answeredAt.set(i, res.at));
  } else {
    await Promise.all(
      endpointIds.map(async (id, i) => {
        const res =
          stop === 'delete' ? await timed('DELETE', `/v1/endpoints/${id}`, account.apiKey) : await timed('PATCH', `/v1/endpoints/${id}`, account.apiKey, { enabled: false });
        expect(res.status).toBe(stop === 'delete' ? 204 : 200);
        answeredAt.set(i, res.at);
      }),
    );
  }

  const published = await publishing;
  for (const p of published) expect(p.status).toBe(202);
  const accepted = published.reduce((n, p) => n + p.body.deliveries.length, 0);
  // Everything settles: nothing pending, and every request the receiver got is in the log.
  const pendingLeft = async () => (await h.db.query<{ n: number }>(`select count(*)::int as n from deliveries where account_id = $1 and status = 'pending'`, [account.id]))[0].n;
  const attemptCount = async () =>
    (await h.db.query<{ n: number }>('select count(*)::int as n from delivery_attempts a join deliveries d on d.id = a.delivery_id where d.account_id = $1', [account.id]))[0].n;
  // (Bounded waits: what was in flight ends within one reply delay; the checks below say what went wrong.)
  await waitFor(
    async () => ((await pendingLeft()) === 0 && (await attemptCount()) === (await receiver.requests()).length) || undefined,
    'everything settled',
    replyDelayMs + 10_000,
  ).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300)); // nothing else arrives late
  const requests: ObservedRequest[] = await receiver.requests();

  const late = requests.map((r) => ({ id: r.webhookId, msAfterAnswer: r.headersAt - answeredAt.get(Number(r.path.split('/').pop()))! })).filter((r) => r.msAfterAnswer > 0);
  const rows = await h.db.query<{ id: string; status: string; final_reason: string | null; got2xx: boolean }>(
    `select d.id, d.status, d.final_reason, coalesce(bool_or(a.status_code between 200 and 299), false) as got2xx
     from deliveries d left join delivery_attempts a on a.delivery_id = d.id and a.series = d.series
     where d.account_id = $1 group by d.id, d.status, d.final_reason`,
    [account.id],
  );
  const count = (f: (r: (typeof rows)[number]) => boolean) => rows.filter(f).length;
  if (process.env.REPORT_FIGURES && late.length) {
    const started = await h.db.query<{ delivery_id: string; started_at: Date }>('select delivery_id, started_at from delivery_attempts where delivery_id = any($1::text[])', [
      late.map((l) => l.id),
    ]);
    const byId = new Map(started.map((r) => [r.delivery_id, r.started_at.getTime()]));
    const ep = new Map(requests.map((r) => [r.webhookId, Number(r.path.split('/').pop())]));
    console.log(
      late
        .slice(0, 60)
        .map((l) => `${l.msAfterAnswer.toFixed(1)}ms late; sender started ${(byId.get(l.id)! - answeredAt.get(ep.get(l.id)!)!).toFixed(1)} ms after answer`)
        .join('\n'),
    );
  }
  if (process.env.REPORT_FIGURES) {
    const maxLate = Math.max(0, ...late.map((l) => l.msAfterAnswer));
    console.log(
      `${stop} reply=${replyDelayMs}ms: ${rows.length} deliveries, ${requests.length} requests, ${late.length} started after the answer (max ${maxLate.toFixed(1)} ms),` +
        ` delivered ${count((r) => r.status === 'delivered')}, cancelled ${count((r) => r.status === 'cancelled')}, cancelled with a 2xx ${count((r) => r.got2xx && r.status === 'cancelled')}`,
    );
  }

  expect(rows).toHaveLength(accepted);
  // (a) no request started after the API had answered;
  expect(late).toEqual([]);
  expect(await pendingLeft()).toBe(0);
  expect(await attemptCount()).toBe(requests.length); // every request is in the log
  // (b, c) whatever got a 2xx is delivered (no reason left over), and nothing else is.
  expect(rows.filter((r) => r.got2xx !== (r.status === 'delivered'))).toEqual([]);
  expect(rows.filter((r) => r.status === 'delivered' && r.final_reason !== null)).toEqual([]);
  expect(count((r) => r.status === 'delivered' || r.status === 'cancelled')).toBe(rows.length);
  return { requests: requests.length, cancelled: count((r) => r.status === 'cancelled') };
}

const FAST_EVENTS = 50;
const SLOW_EVENTS = 30;
const SLOW_REPLY_MS = 1_500;

test('when endpoints are deleted during a burst to a fast receiver, then no request starts after the 204 and every 2xx is logged delivered', async () => {
  await burstThenStop('delete', 0, FAST_EVENTS);
});

test('when endpoints are deleted during a burst to a slow receiver, then no request starts after the 204, and the requests in flight end delivered', async () => {
  const { cancelled } = await burstThenStop('delete', SLOW_REPLY_MS, SLOW_EVENTS);
  expect(cancelled).toBeGreaterThan(0); // the delete did stop something
});

test('when endpoints are disabled during a burst to a fast receiver, then no request starts after the answer and every 2xx is logged delivered', async () => {
  await burstThenStop('disable', 0, FAST_EVENTS);
});

test('when endpoints are disabled during a burst to a slow receiver, then no request starts after the answer, and the requests in flight end delivered', async () => {
  const { cancelled } = await burstThenStop('disable', SLOW_REPLY_MS, SLOW_EVENTS);
  expect(cancelled).toBeGreaterThan(0);
});

test('when the account moves to the free plan during a burst to a slow receiver, then no request starts after the answer, and the requests in flight end delivered', async () => {
  const { cancelled } = await burstThenStop('downgrade', SLOW_REPLY_MS, SLOW_EVENTS);
  expect(cancelled).toBeGreaterThan(0);
});

test('when the account moves to the free plan during a burst to a fast receiver, then no request starts after the answer and every 2xx is logged delivered', async () => {
  await burstThenStop('downgrade', 0, FAST_EVENTS);
});
