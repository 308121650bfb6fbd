import type { Browser, BrowserContext, Page } from 'playwright-core';
import { recordEndpointFailures } from '../../src/db/endpointHealth';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';
import { launchBrowser, screenshot } from '../helpers/browser';
import { Receiver, waitFor } from '../helpers/receiver';

// The settings page's banner on an endpoint that fails or was disabled: the reason and what to do.
let h: Harness;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness();
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

const card = () => page.getByTestId('endpoint-card').first();
const banner = () => card().getByTestId('endpoint-banner');
const bannerText = async () => (await banner().innerText()).replace(/\s+/g, ' ').trim();

async function open(accountId: string): Promise<void> {
  const link = await h.call('POST', `/v1/accounts/${accountId}/portal-links`, { body: {} });
  await page.goto(link.body.url);
  await card().waitFor();
}

test("when an endpoint's circuit is open, then its card shows a banner with the failures, the last error and what to do; once it answers again the banner is gone", async () => {
  const account = await newAccount(h);
  const ep = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } })).body;
  await open(account.id);
  expect(await banner().isHidden()).toBe(true);

  await recordEndpointFailures(h.db, [{ endpointId: ep.id, at: new Date(Date.now() - 60_000), count: 5, error: 'HTTP 503' }], 5, 3_600_000);
  await page.reload();
  await banner().waitFor();
  expect(await bannerText()).toMatch(/Not receiving: 5 attempts in a row failed \(last error: HTTP 503\), so deliveries are held since .*Retry pending now/);
  await screenshot(page, '08-endpoint-banner-failing');

  await h.db.query('delete from endpoint_health where endpoint_id = $1', [ep.id]);
  await page.reload();
  await card().waitFor();
  expect(await banner().isHidden()).toBe(true);
});

test('when an endpoint was disabled, then the banner gives the reason and says to fix the receiver, enable it and recover; the Enable button is described by the reason', async () => {
  const account = await newAccount(h);
  const ep = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } })).body;
  await h.db.query(`update endpoints set enabled = false, disabled_reason = 'receiver answered 410 Gone; endpoint disabled', disabled_at = now() where id = $1`, [ep.id]);
  await open(account.id);
  await banner().waitFor();
  const text = await bannerText();
  expect(text).toMatch(/^Disabled on .*: receiver answered 410 Gone; endpoint disabled/);
  expect(await card().getByTestId('endpoint-banner-advice').textContent()).toMatch(/press Enable, then Recover/);
  const toggle = card().getByTestId('toggle-enabled');
  const describedBy = await toggle.getAttribute('aria-describedby');
  expect(await page.locator(`[id="${describedBy}"]`).textContent()).toMatch(/^Disabled on/);
  await screenshot(page, '09-endpoint-banner-disabled');

  await toggle.click();
  await waitFor(async () => ((await banner().isHidden()) ? true : undefined), 'the banner to go');
});
