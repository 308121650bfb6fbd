import { Receiver } from '../helpers/receiver';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';

/**
 * The platform's own documented payloads, published byte for byte as its public docs show them
 * (PRODUCT.md): every one is accepted and reaches the receiver with exactly that `data`.
 */
const DOCUMENTED_PARTICIPANT = `{
    "participantId": 384, "firstName": "", "lastName": "", "email": "karan.r.shahss92@gmail.com",
    "code": "scG3q9Ez", "campaignId": "PMf8BDZ1zb", "referredByCode": null,
    "referralReward": 0, "referralRewardBalance": 0, "referralRewardRedeemed": 0,
    "refereeReward": 0, "refereeRewardBalance": 0, "refereeRewardRedeemed": 0,
    "refereeActionCompleted": false, "refereeActionCompletedLabel": null, "rewardType": null,
    "rewardCurrency": "USD", "createdOn": "2025-02-09T03:00:28.002+00:00",
    "updatedOn": "2025-02-09T03:00:28.002+00:00", "approval": true, "totalReferred": 0,
    "totalCompletedReferred": 0, "amountPaid": 0, "paymentCount": 0, "revenueGenerated": 0,
    "rewardDue": 0, "rewardPaid": 0, "score": "Low", "impressionCount": 0
  }`;
// reward_unlocked: the participant plus the reward, its side said the way senders in this market say it.
const DOCUMENTED_REWARD = `${DOCUMENTED_PARTICIPANT.slice(0, -4)},
    "reward": { "id": "rw_51", "amount": 25, "currency": "USD", "type": "cash", "isReferrer": true }
  }`;
const SAMPLES: Record<string, string> = { referrer_added: DOCUMENTED_PARTICIPANT, referee_added: DOCUMENTED_PARTICIPANT, reward_unlocked: DOCUMENTED_REWARD };

let h: Harness;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await new Receiver().start();
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
  await receiver?.stop();
});

async function accountWithEndpoint(path: string): Promise<{ id: string; apiKey: string }> {
  const a = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', {
    token: a.apiKey,
    body: { url: receiver.url.replace(/\/webhooks$/, path), eventTypes: ['referrer_added', 'referee_added', 'reward_unlocked'] },
  });
  expect(ep.status).toBe(201);
  return a;
}

/** Publishes with `data` given as raw JSON text, exactly as the platform would send it. */
function publishRaw(accountId: string, eventType: string, dataText: string, idempotencyKey?: string) {
  const key = idempotencyKey ? `, "idempotencyKey": ${JSON.stringify(idempotencyKey)}` : '';
  return h.call('POST', '/v1/events', {
    rawBody: `{"accountId": ${JSON.stringify(accountId)}, "eventType": "${eventType}", "data": ${dataText}${key}}`,
    headers: { 'content-type': 'application/json' },
  });
}

async function received(path: string, n: number): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const got = receiver.requests.filter((r) => r.path === path).map((r) => r.body);
    if (got.length >= n || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The `data` member of a webhook body, as its exact JSON text (key order included). */
const dataText = (body: string) => JSON.stringify(JSON.parse(body).data);

test.each(Object.keys(SAMPLES))('when the platform publishes its documented %s sample, then it is accepted and the receiver gets exactly that data', async (eventType) => {
  const a = await accountWithEndpoint(`/docs-${eventType}`);
  const res = await publishRaw(a.id, eventType, SAMPLES[eventType]);
  expect([res.status, res.body.code]).toEqual([202, undefined]);
  const [body] = await received(`/docs-${eventType}`, 1);
  expect(JSON.parse(body).eventType).toBe(eventType);
  expect(dataText(body)).toBe(JSON.stringify(JSON.parse(SAMPLES[eventType])));
  expect(JSON.parse(body).data.approval).toBe(true);
  expect(JSON.parse(body).data.score).toBe('Low');
});

test('when a reward says its side with side or isReferrer, then both are accepted; a contradiction or neither is a 400', async () => {
  const a = await newAccount(h);
  const base = JSON.parse(DOCUMENTED_PARTICIPANT);
  const reward = { id: 7, amount: 5, currency: 'EUR', type: 'coupon' };
  const publish = (r: object) => h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'reward_unlocked', data: { ...base, reward: r } } });
  expect((await publish({ ...reward, side: 'referee' })).status).toBe(202);
  expect((await publish({ ...reward, isReferrer: false })).status).toBe(202);
  expect((await publish({ ...reward, side: 'referee', isReferrer: false })).status).toBe(202);
  const both = await publish({ ...reward, side: 'referrer', isReferrer: false });
  expect([both.status, both.body.errors]).toEqual([400, [{ path: 'data.reward.isReferrer', message: expect.stringContaining('contradicts') }]]);
  const neither = await publish(reward);
  expect([neither.status, neither.body.errors]).toEqual([400, [{ path: 'data.reward.side', message: expect.stringContaining('isReferrer') }]]);
});

test('when data carries fields the catalog does not know (a __proto__ key, nested objects, a new field), then the receiver gets them verbatim, in order', async () => {
  const a = await accountWithEndpoint('/verbatim');
  const text = `{"zeta": 1, "participantId": 9, "__proto__": {"polluted": true}, "email": "z@example.com", "code": "c9", "campaignId": "k", "extra": {"b": [1, {"a": null}], "a": "x"}, "constructor": "c"}`;
  const res = await publishRaw(a.id, 'referrer_added', text);
  expect(res.status).toBe(202);
  const [body] = await received('/verbatim', 1);
  expect(body).toContain('"__proto__":{"polluted":true}');
  expect(dataText(body)).toBe(JSON.stringify(JSON.parse(text)));
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

test('when the same idempotencyKey comes again with the same data in another key order, then it is the same publish, not a 409', async () => {
  const a = await newAccount(h);
  const first = await publishRaw(
    a.id,
    'referrer_added',
    `{"participantId": 1, "email": "o@example.com", "code": "c", "campaignId": "k", "x": 1, "y": {"p": 1, "q": 2}}`,
    'order-1',
  );
  const again = await publishRaw(
    a.id,
    'referrer_added',
    `{"y": {"q": 2, "p": 1}, "x": 1, "campaignId": "k", "code": "c", "email": "o@example.com", "participantId": 1}`,
    'order-1',
  );
  expect([first.status, again.status]).toEqual([202, 202]);
  expect(again.body.id).toBe(first.body.id);
  expect(again.headers.get('idempotent-replayed')).toBe('true');
  const changed = await publishRaw(
    a.id,
    'referrer_added',
    `{"participantId": 1, "email": "o@example.com", "code": "c", "campaignId": "k", "x": 2, "y": {"p": 1, "q": 2}}`,
    'order-1',
  );
  expect([changed.status, changed.body.code]).toEqual([409, 'idempotency_conflict']);
});
