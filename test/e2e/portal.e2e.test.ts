import type { Browser, BrowserContext, Page } from 'playwright-core';
import { portalSigningKey, signPortalToken } from '../../src/domain/portalToken';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { launchBrowser, screenshot } from '../helpers/browser';
import { Receiver } from '../helpers/receiver';
import { recordEndpointFailures } from '../../src/db/endpointHealth';

let h: Harness;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness({ RETRY_INITIAL_INTERVAL: '2s' });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
});
beforeEach(async () => {
  receiver = await new Receiver().start();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
});
afterEach(async () => {
  await context.close();
  await receiver.stop();
});

async function portalUrl(accountId: string, scope: 'manage' | 'read' = 'manage'): Promise<string> {
  const res = await h.call('POST', `/v1/accounts/${accountId}/portal-links`, { body: { scope } });
  expect(res.status).toBe(201);
  return res.body.url;
}

const card = () => page.getByTestId('endpoint-card').first();
const row = (deliveryId: string) => page.locator(`[data-testid="delivery-row"][data-delivery-id="${deliveryId}"]`);

test('when a customer opens their link, adds an endpoint for two events and sends a test event, then they see it delivered in the log', async () => {
  const account = await newAccount(h);
  await page.goto(await portalUrl(account.id));
  expect(page.url()).not.toContain('token='); // the token leaves the address bar at once
  await page.getByTestId('account-name').waitFor();

  await page.getByTestId('endpoint-url').fill('ftp://nope');
  await page.getByTestId('event-type-referrer_added').check();
  await page.getByTestId('save-endpoint').click();
  await page.getByTestId('field-error-url').waitFor();
  expect(await page.getByTestId('field-error-url').textContent()).toMatch(/https/);

  await page.getByTestId('endpoint-url').fill(receiver.url);
  await page.getByTestId('endpoint-description').fill('CRM sync');
  await page.getByTestId('event-type-reward_unlocked').check();
  await screenshot(page, '01-add-endpoint');
  await page.getByTestId('save-endpoint').click();
  await page.getByTestId('new-secret-notice').waitFor();
  await card().waitFor();
  expect(await card().getByTestId('endpoint-card-url').textContent()).toContain(receiver.url);
  const [endpoint] = (await h.call('GET', '/v1/endpoints', { token: account.apiKey })).body.data;
  expect(endpoint.eventTypes.sort()).toEqual(['referrer_added', 'reward_unlocked']);
  expect(endpoint.description).toBe('CRM sync');

  await card().getByTestId('reveal-secret').click();
  await card().getByTestId('secret-value').waitFor();
  const { secret } = (await h.call('GET', `/v1/endpoints/${endpoint.id}/secret`, { token: account.apiKey })).body;
  await expect_(async () => (await card().getByTestId('secret-value').textContent())?.includes(secret));

  await card().getByTestId('test-event-type').selectOption('reward_unlocked');
  await card().getByTestId('send-test').click();
  await expect_(async () => /200/.test((await card().getByTestId('test-result').textContent()) ?? ''));
  expect(receiver.requests).toHaveLength(1);
  expect(JSON.parse(receiver.requests[0].body).eventType).toBe('reward_unlocked');
  const deliveryId = String(receiver.requests[0].headers['webhook-id']);

  await page.getByTestId('refresh-log').click();
  await row(deliveryId).waitFor();
  expect(await row(deliveryId).getAttribute('data-status')).toBe('delivered');
  await screenshot(page, '02-test-event-delivered');
});

test('when the receiver fails, then the log shows the attempts, their request and response headers, and next retry; once it recovers, Resend delivers it', async () => {
  const account = await newAccount(h);
  const credential = 'Bearer gw_s3cr3t_7Hq2xY';
  await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'], headers: { Authorization: credential } } });
  receiver.respond = () => ({ status: 503, body: 'maintenance', headers: { 'X-Request-Id': 'req_7f3a', 'X-Upstream': 'maintenance', 'Set-Cookie': 'sid=s3cr3t-session' } });
  await page.goto(await portalUrl(account.id));
  await card().waitFor();

  await card().getByTestId('send-test').click();
  await expect_(async () => /503/.test((await card().getByTestId('test-result').textContent()) ?? ''));
  const deliveryId = String(receiver.requests[0].headers['webhook-id']);
  await page.getByTestId('refresh-log').click();
  await row(deliveryId).click();
  await page.getByTestId('delivery-details').waitFor();
  expect(await page.getByTestId('details-status').textContent()).toMatch(/pending/);
  expect(await page.getByTestId('attempt-row').count()).toBeGreaterThanOrEqual(1);
  expect(await page.getByTestId('delivery-details').textContent()).toContain('maintenance');
  await page.getByTestId('next-retry').waitFor();
  await screenshot(page, '03-failing-delivery');

  // Each attempt's headers, collapsed until opened from the keyboard: what the receiver got
  // (the custom Authorization redacted) and what it answered (no cookie).
  const request = page.getByTestId('request-headers').first();
  const response = page.getByTestId('response-headers').first();
  expect(await request.evaluate((d: any) => d.open)).toBe(false);
  await request.locator('summary').focus();
  await page.keyboard.press('Enter');
  await expect_(async () => request.evaluate((d: any) => d.open as boolean));
  const sent = receiver.requests[0].headers;
  const requestText = (await request.textContent()) ?? '';
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'user-agent', 'content-type']) expect(requestText).toContain(`${name}${String(sent[name])}`);
  expect(requestText).toContain('Authorization••••q2xY');
  expect(requestText).not.toContain('gw_s3cr3t');
  expect(await request.locator('summary').textContent()).toMatch(/Request headers \(\d+\) of attempt 1/);
  await response.locator('summary').focus();
  await page.keyboard.press(' ');
  await expect_(async () => response.evaluate((d: any) => d.open as boolean));
  const responseText = (await response.textContent()) ?? '';
  expect(responseText).toContain('x-request-idreq_7f3a');
  expect(responseText).toContain('x-upstreammaintenance');
  expect(responseText).not.toMatch(/set-cookie|s3cr3t-session/);
  if (await page.locator('#toast-close').isVisible()) await page.locator('#toast-close').click(); // not over the screenshot
  await page
    .locator('#delivery-details h4')
    .first()
    .evaluate((n: any) => n.scrollIntoView({ block: 'start' }));
  await screenshot(page, 'attempt-headers-desktop', { docs: true, fullPage: false });

  // Give up on this series (disable and re-enable the endpoint: pending → cancelled), then fix the receiver and resend.
  await h.call('PATCH', `/v1/endpoints/${(await h.call('GET', '/v1/endpoints', { token: account.apiKey })).body.data[0].id}`, { token: account.apiKey, body: { enabled: false } });
  await h.call('PATCH', `/v1/endpoints/${(await h.call('GET', '/v1/endpoints', { token: account.apiKey })).body.data[0].id}`, { token: account.apiKey, body: { enabled: true } });
  receiver.respond = () => ({ status: 200, body: 'thanks' });
  await page.getByTestId('refresh-log').click();
  await row(deliveryId).click();
  await expect_(async () => (await page.getByTestId('details-status').textContent())?.includes('cancelled'));
  const before = receiver.requests.length;
  await page.getByTestId('resend').click();
  await expect_(async () => receiver.requests.length > before);
  expect(receiver.requests[receiver.requests.length - 1].headers['webhook-id']).toBe(deliveryId);
  await expect_(async () => {
    await page.getByTestId('refresh-log').click();
    return (await row(deliveryId).getAttribute('data-status')) === 'delivered';
  });
  await screenshot(page, '04-resent-delivered');
});

test('when a free-plan account opens its link, then it sees the upgrade message instead of the form', async () => {
  const account = await newAccount(h, 'free');
  await page.goto(await portalUrl(account.id));
  await page.getByTestId('upgrade-message').waitFor();
  expect(await page.getByTestId('endpoint-form').count()).toBe(0);
  await screenshot(page, '05-free-plan');
});

test('when a read-only link is opened, then the page shows the endpoint and its deliveries but offers no change', async () => {
  const account = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant() } });
  expect([ep.status, pub.status]).toEqual([201, 202]);
  await page.goto(await portalUrl(account.id, 'read'));
  await page.getByTestId('read-only-message').waitFor();
  await card().waitFor();
  expect(await page.getByTestId('endpoint-form').count()).toBe(0);
  for (const id of ['edit-endpoint', 'delete-endpoint', 'toggle-enabled', 'rotate-secret', 'send-test', 'recover', 'retry-pending'])
    expect([id, await card().getByTestId(id).count()]).toEqual([id, 0]);
  expect(await card().getByTestId('reveal-secret').count()).toBe(1);
  await row(pub.body.deliveries[0].id).waitFor();
  await screenshot(page, '08-read-only');
});

test('when a link is expired or tampered with, then the page refuses it', async () => {
  const account = await newAccount(h);
  const expired = signPortalToken(portalSigningKey(h.adminToken), account.id, Date.now() - 1000);
  await page.goto(`${h.baseUrl}/portal#token=${expired}`);
  await page.getByTestId('auth-error').waitFor();
  expect(
    await page
      .getByTestId('endpoint-form')
      .isVisible()
      .catch(() => false),
  ).toBe(false);
  await screenshot(page, '06-expired-link');

  const good = await portalUrl(account.id);
  const page2 = await context.newPage();
  // Point the token at another account by rewriting its payload; the signature no longer matches.
  const forgedPayload = Buffer.from(JSON.stringify({ a: 'acc_someone_else', e: 9_999_999_999 })).toString('base64url');
  await page2.goto(good.replace(/rrp_[^.]+\./, `rrp_${forgedPayload}.`));
  await page2.getByTestId('auth-error').waitFor();
});

test("when one account's link is open, then another account's endpoints and deliveries never show", async () => {
  const a = await newAccount(h);
  const b = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: b.apiKey, body: { url: `${receiver.url}?account=b`, eventTypes: ['referrer_added'], description: 'B secret endpoint' } });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: b.id, eventType: 'referrer_added', data: participant() } });
  await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: `${receiver.url}?account=a`, eventTypes: ['referrer_added'] } });

  await page.goto(await portalUrl(a.id));
  await card().waitFor();
  const text = (await page.textContent('body')) ?? '';
  expect(text).not.toContain('account=b');
  expect(text).not.toContain('B secret endpoint');
  expect(text).not.toContain(pub.body.deliveries[0].id);
  expect(await page.getByTestId('endpoint-card').count()).toBe(1);
});

test('when the page is opened on a phone, then it stays usable (no horizontal page scroll)', async () => {
  const account = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const p = await phone.newPage();
  await p.goto(await portalUrl(account.id));
  await p.getByTestId('endpoint-card').first().waitFor();
  const overflow = await p.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
  expect(Number(overflow)).toBeLessThanOrEqual(1);
  await screenshot(p, '07-phone');
  await phone.close();
});

/** Polls a condition (the page updates asynchronously) for up to 20 s. */
async function expect_(cond: () => Promise<boolean | undefined>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms: ${cond.toString().slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("when an endpoint's circuit is open, then its card shows it with the next probe, a held delivery's details say it is held, and Retry now delivers it", async () => {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  // Opened by 5 failures a minute ago; the next probe is an hour away.
  await recordEndpointFailures(h.db, [{ endpointId: created.body.id, at: new Date(Date.now() - 60_000), count: 5, error: 'HTTP 503' }], 5, 3_600_000);
  const deliveryId = (await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) } })).body.deliveries[0].id;
  await expect_(async () => (await h.call('GET', `/v1/deliveries/${deliveryId}`, { token: account.apiKey })).body.held !== undefined);

  await page.goto(await portalUrl(account.id));
  await card().waitFor();
  expect(await card().getByTestId('health-badge').textContent()).toBe('Circuit open');
  expect(await card().getByTestId('endpoint-health').textContent()).toMatch(/Deliveries are held since .* after 5 failed attempts in a row\. Next probe: .*Last error: HTTP 503/);
  await row(deliveryId).click();
  await page.getByTestId('delivery-details').waitFor();
  expect(await page.getByTestId('details-held').textContent()).toMatch(/^Held until .*: the endpoint's circuit is open, no request is made/);
  expect(receiver.requests).toHaveLength(0);
  await screenshot(page, '07-held-delivery');

  await page.getByTestId('retry-now').click();
  await expect_(async () => (await page.getByTestId('details-status').textContent())?.includes('delivered'));
  expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([deliveryId]);
  await page.reload();
  await card().waitFor();
  expect(await card().getByTestId('health-badge').textContent()).toBe('Healthy');
});
