import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';

/** The Temporal Web UI is the operator's, unauthenticated: customers never get links to it. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ TEMPORAL_UI_URL: 'http://127.0.0.1:8233' }, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

test('when a customer reads deliveries (API key or portal link), then no Temporal Web UI link is included; the admin gets one', async () => {
  const a = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'referrer_added', data: participant() } });
  const id = pub.body.deliveries[0].id;
  const portal = await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} });
  const portalToken = new URL(portal.body.url).hash.replace('#token=', '');

  for (const token of [a.apiKey, portalToken]) {
    const list = await h.call('GET', '/v1/deliveries', { token });
    const one = await h.call('GET', `/v1/deliveries/${id}`, { token });
    expect([list.status, one.status]).toEqual([200, 200]);
    expect(JSON.stringify([list.body, one.body])).not.toContain('8233');
    expect(one.body.workflowUrl).toBeUndefined();
  }
  const admin = await h.call('GET', `/v1/deliveries/${id}?accountId=${a.id}`);
  expect(admin.body.workflowUrl).toMatch(/^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\//);
});
