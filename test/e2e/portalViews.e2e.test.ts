import type { Browser, BrowserContext, Page } from 'playwright-core';
import { recordAttempts, type AttemptRecord } from '../../src/db/deliveries';
import { newId } from '../../src/domain/ids';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';
import { launchBrowser, screenshot } from '../helpers/browser';
import { Receiver } from '../helpers/receiver';

// The settings page's views of issue 15: a page per endpoint, the event catalog with "send
// example", the delivery log's date range, id search, test marker, auto-refresh and bulk resend,
// the verification snippets, and the phone layout. The browser runs in Paris time, so times on
// the page carry UTC+1 or UTC+2.
let h: Harness;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let receiver: Receiver;

const TIME_ZONE = 'Europe/Paris';
const HOUR = 3_600_000;

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
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: TIME_ZONE });
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

async function endpoint(apiKey: string, path: string, description = '') {
  const res = await h.call('POST', '/v1/endpoints', { token: apiKey, body: { url: `${receiver.url}${path}`, eventTypes: ['referrer_added', 'reward_unlocked'], description } });
  expect(res.status).toBe(201);
  return res.body as { id: string; url: string };
}

/** A delivery (and its event) created `hoursAgo`, stored directly; `status` as given (nothing sends it unless resent). */
async function seed(accountId: string, endpointId: string, hoursAgo: number, status: string, opts: { test?: boolean; eventId?: string } = {}) {
  const at = new Date(Date.now() - hoursAgo * HOUR);
  const eventId = opts.eventId ?? newId('evt', at.getTime());
  const id = newId('dlv', at.getTime());
  if (!opts.eventId) {
    const body = JSON.stringify({ eventType: 'referrer_added', data: { participantId: 7 }, createdAt: at.getTime(), updatedAt: at.getTime() });
    await h.db.query(`insert into events (id, account_id, event_type, body, is_test, created_at) values ($1, $2, 'referrer_added', $3, $4, $5)`, [
      eventId,
      accountId,
      body,
      opts.test ?? false,
      at,
    ]);
  }
  await h.db.query(
    `insert into deliveries (id, account_id, event_id, endpoint_id, event_type, status, dispatched_series, attempt_count, created_at) values ($1, $2, $3, $4, 'referrer_added', $5, 1, $6, $7)`,
    [id, accountId, eventId, endpointId, status, status === 'pending' ? 0 : 1, at],
  );
  return { id, eventId, createdAt: at.toISOString() };
}

const rows = (p: Page = page) => p.getByTestId('delivery-row');
const row = (id: string, p: Page = page) => p.locator(`[data-testid="delivery-row"][data-delivery-id="${id}"]`);
const shownIds = async (p: Page = page) => rows(p).evaluateAll((trs) => trs.map((tr) => (tr as any).dataset.deliveryId as string));
const cardOf = (id: string, p: Page = page) => p.locator(`[data-testid="endpoint-card"][data-endpoint-id="${id}"]`);

/** The value a datetime-local input takes for this instant, in the browser's time zone. */
const localInput = (iso: string) =>
  page.evaluate((t) => {
    const d = new Date(t);
    const p = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }, iso);

/** Closes the result message so it does not cover a screenshot. */
async function dismissToast(p: Page): Promise<void> {
  const close = p.locator('#toast-close');
  if (await close.isVisible()) await close.click();
}

/** Polls a condition (the page updates asynchronously). */
async function soon(cond: () => Promise<boolean | undefined>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms: ${cond.toString().slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('when a customer opens an endpoint from the list, then its page shows its settings, health, stats, secret and only its deliveries; Back and a reload keep the view; an unknown id says so', async () => {
  const account = await newAccount(h);
  const crm = await endpoint(account.apiKey, '/crm', 'CRM sync');
  const other = await endpoint(account.apiKey, '/other', 'Analytics');
  const mine = [await seed(account.id, crm.id, 3, 'delivered'), await seed(account.id, crm.id, 2, 'undeliverable'), await seed(account.id, crm.id, 1, 'delivered', { test: true })];
  const theirs = await seed(account.id, other.id, 1.5, 'delivered');
  // A day of attempts for its stats: one an hour, a few failing in the night.
  const attempts: AttemptRecord[] = [];
  for (let i = 0; i < 22; i++) {
    const d = await seed(account.id, crm.id, 23.5 - i * 0.9, i % 7 === 3 ? 'undeliverable' : 'delivered');
    const startedAt = new Date(Date.parse(d.createdAt) + 40);
    attempts.push(
      i % 7 === 3
        ? { deliveryId: d.id, series: 1, startedAt, durationMs: 900, statusCode: 503, error: 'HTTP 503', outcome: '5xx' }
        : { deliveryId: d.id, series: 1, startedAt, durationMs: 60 + (i % 5) * 25, statusCode: 200, delivered: true, outcome: '2xx' },
    );
  }
  await recordAttempts(h.db, attempts);
  await h.db.query('update deliveries set attempt_count = 1 where endpoint_id = $1', [crm.id]); // recordAttempts counted them again
  /** The endpoint's page lists its deliveries, newest first, and no other endpoint's. */
  const onlyMine = (ids: string[]) =>
    ids.length === 20 &&
    ids.slice(0, 3).join() ===
      mine
        .map((d) => d.id)
        .reverse()
        .join() &&
    !ids.includes(theirs.id);

  await page.goto(await portalUrl(account.id));
  await cardOf(crm.id).waitFor();
  await row(theirs.id).waitFor();
  expect(await page.getByTestId('endpoint-card').count()).toBe(2);

  await cardOf(crm.id).getByTestId('endpoint-page-link').click();
  await page.waitForURL(`**/portal#/endpoints/${crm.id}`);
  await soon(async () => onlyMine(await shownIds()));
  expect(await page.locator('[data-testid="endpoint-card"]:visible').count()).toBe(1);
  expect(await page.getByTestId('endpoint-page-url').textContent()).toBe(crm.url);
  expect(await page.title()).toBe(`${crm.url} · Webhook settings`);
  expect(await page.evaluate('document.activeElement?.id')).toBe('endpoints-title');
  expect(await page.locator('#endpoints-title').textContent()).toBe('Endpoint');
  expect(await page.locator('#log-title').textContent()).toBe('Deliveries to this endpoint');
  // Settings, health, stats and secret are the card's; the add form, the endpoint filter and the catalog are the overview's.
  const card = cardOf(crm.id);
  expect(await card.textContent()).toContain('CRM sync');
  expect(await card.getByTestId('health-badge').textContent()).toBe('Healthy');
  await card.getByTestId('chart-outcomes-svg').waitFor();
  for (const hiddenOnPage of ['endpoint-form', 'filter-endpoint', 'catalog-list'])
    expect([hiddenOnPage, await page.getByTestId(hiddenOnPage).isVisible()]).toEqual([hiddenOnPage, false]);
  expect(await row(mine[2].id).getByTestId('test-badge').textContent()).toBe('Test');
  await page.evaluate('window.scrollTo(0, 0)');
  await screenshot(page, 'endpoint-page-desktop', { docs: true });

  // A reload stays on the page (the link's token is in session storage); Back returns to the overview.
  await page.reload();
  await soon(async () => onlyMine(await shownIds()));
  await page.getByTestId('back-to-endpoints').click();
  await row(theirs.id).waitFor();
  expect(await page.locator('[data-testid="endpoint-card"]:visible').count()).toBe(2);
  expect(await page.getByTestId('endpoint-form').isVisible()).toBe(true);
  await page.goBack();
  await soon(async () => !(await row(theirs.id).isVisible()));

  await page.evaluate("location.hash = '#/endpoints/ep_01jm6z4a1s3d5f7g9h1j3k5l7z'");
  await page.getByTestId('endpoint-missing').waitFor();
  expect(await page.locator('[data-testid="endpoint-card"]:visible').count()).toBe(0);
});

test('when the event catalog is opened, then each type shows its JSON Schema and sample from the API, and Send example delivers that sample to the chosen endpoint as a test delivery', async () => {
  const account = await newAccount(h);
  await endpoint(account.apiKey, '/first');
  const target = await endpoint(account.apiKey, '/target');
  const catalog = (await h.call('GET', '/v1/event-types', { token: account.apiKey })).body.data;

  await page.goto(await portalUrl(account.id));
  const items = page.getByTestId('catalog-item');
  await items.first().waitFor();
  expect(await items.evaluateAll((li) => li.map((n) => (n as any).dataset.eventType as string))).toEqual(catalog.map((t: any) => t.type));
  const reward = page.locator('[data-testid="catalog-item"][data-event-type="reward_unlocked"]');
  await reward.getByTestId('catalog-schema').locator('summary').click();
  const schema = JSON.parse((await reward.getByTestId('catalog-schema').locator('pre').textContent())!);
  expect(schema).toEqual(catalog.find((t: any) => t.type === 'reward_unlocked').schema);
  expect(schema.properties.data.properties.reward.required).toEqual(expect.arrayContaining(['id', 'amount', 'currency']));
  await reward.getByTestId('catalog-sample').locator('summary').click();
  const sample = JSON.parse((await reward.getByTestId('catalog-sample').locator('pre').textContent())!);
  expect(sample.eventType).toBe('reward_unlocked');
  expect(sample.data).toEqual(catalog.find((t: any) => t.type === 'reward_unlocked').example);

  await page.getByTestId('catalog-endpoint').selectOption(target.id);
  await reward.getByTestId('send-example').click();
  await soon(async () => (await reward.getByTestId('example-result').getAttribute('data-status')) === 'delivered');
  expect(await reward.getByTestId('example-result').textContent()).toContain('200');
  expect(receiver.requests).toHaveLength(1);
  expect(receiver.requests[0].path).toContain('/target');
  const got = JSON.parse(receiver.requests[0].body);
  expect([got.eventType, got.data]).toEqual(['reward_unlocked', sample.data]);
  const deliveryId = String(receiver.requests[0].headers['webhook-id']);
  await row(deliveryId).getByTestId('test-badge').waitFor();
  expect(await row(deliveryId).getAttribute('data-test')).toBe('true');
  await dismissToast(page);
  await page.locator('#catalog-title').evaluate((n: any) => n.scrollIntoView({ block: 'start' }));
  await screenshot(page, 'event-catalog-desktop', { docs: true, fullPage: false });

  // A read-only link shows the catalog but cannot send.
  const ro = await context.newPage();
  await ro.goto(await portalUrl(account.id, 'read'));
  await ro.getByTestId('catalog-item').first().waitFor();
  expect(await ro.getByTestId('send-example').count()).toBe(0);
  expect(await ro.getByTestId('catalog-endpoint').isVisible()).toBe(false);
});

test('when the log is filtered by a date range or searched by an event or delivery id, then only those deliveries show, with their time zone, and a bad search is refused next to the box', async () => {
  const account = await newAccount(h);
  const a = await endpoint(account.apiKey, '/a');
  const b = await endpoint(account.apiKey, '/b');
  const old = await seed(account.id, a.id, 30, 'delivered');
  const mid1 = await seed(account.id, a.id, 20, 'undeliverable');
  const mid2 = await seed(account.id, b.id, 10, 'delivered', { test: true });
  const twin = await seed(account.id, a.id, 10, 'delivered', { eventId: mid2.eventId });
  const recent = await seed(account.id, a.id, 1, 'delivered');

  await page.goto(await portalUrl(account.id));
  await row(recent.id).waitFor();
  expect(await page.getByTestId('time-zone-hint').textContent()).toMatch(/^Times are in your time zone, Europe\/Paris \(UTC\+[12]\)\.$/);
  const created = await row(recent.id).locator('time').textContent();
  expect(created).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\+[12]$/);
  expect(await row(recent.id).locator('time').getAttribute('datetime')).toBe(recent.createdAt);

  await page.getByTestId('filter-since').fill(await localInput(new Date(Date.now() - 25 * HOUR).toISOString()));
  await page.getByTestId('filter-since').dispatchEvent('change');
  await page.getByTestId('filter-until').fill(await localInput(new Date(Date.now() - 5 * HOUR).toISOString()));
  await page.getByTestId('filter-until').dispatchEvent('change');
  await soon(async () => (await shownIds()).sort().join() === [mid1.id, mid2.id, twin.id].sort().join());
  expect(await row(mid2.id).getByTestId('test-badge').isVisible()).toBe(true);
  expect(await row(mid1.id).getByTestId('test-badge').count()).toBe(0);
  await page.evaluate('document.activeElement.blur()');
  await page.locator('#log-title').evaluate((n: any) => n.scrollIntoView({ block: 'start' }));
  await screenshot(page, 'delivery-log-desktop', { docs: true, fullPage: false });

  await page.getByTestId('clear-filters').click();
  await soon(async () => (await shownIds()).length === 5);
  expect(await shownIds()).toContain(old.id);

  // An event id finds each of its deliveries; a delivery id (pasted in capitals) finds that one.
  await page.getByTestId('filter-search').fill(mid2.eventId);
  await page.getByTestId('filter-search').press('Enter');
  await soon(async () => (await shownIds()).sort().join() === [mid2.id, twin.id].sort().join());
  await page.getByTestId('filter-search').fill(` ${mid1.id.toUpperCase()} `);
  await page.getByTestId('search-log').click();
  await soon(async () => (await shownIds()).join() === mid1.id);
  // From a delivery's details: all the deliveries of its event.
  await row(mid1.id).click();
  await page.getByTestId('find-event-deliveries').click();
  await soon(async () => (await page.getByTestId('filter-search').inputValue()) === mid1.eventId);

  await page.getByTestId('filter-search').fill('hello');
  await page.getByTestId('filter-search').press('Enter');
  await page.getByTestId('filter-error-search').waitFor();
  expect(await page.getByTestId('filter-error-search').textContent()).toMatch(/dlv_.*evt_/);
  expect(await page.getByTestId('filter-search').getAttribute('aria-invalid')).toBe('true');
  expect(await page.getByTestId('filter-search').getAttribute('aria-describedby')).toBe('filter-error-search');
  // A malformed id with the right prefix: the server's 400 lands next to the box too.
  await page.getByTestId('filter-search').fill('evt_nope');
  await page.getByTestId('filter-search').press('Enter');
  await soon(
    async () =>
      /evt_/.test((await page.getByTestId('filter-error-search').textContent()) ?? '') && !/dlv_/.test((await page.getByTestId('filter-error-search').textContent()) ?? ''),
  );
});

test('when pending deliveries are shown, then the log refreshes itself every 5 s (said politely) until none is pending, and not while the toggle is off', async () => {
  const account = await newAccount(h);
  const ep = await endpoint(account.apiKey, '/slow');
  const pending = await seed(account.id, ep.id, 0.1, 'pending');

  await page.goto(await portalUrl(account.id));
  await row(pending.id).waitFor();
  const status = page.getByTestId('auto-refresh-status');
  expect(await status.getAttribute('aria-live')).toBe('polite');
  expect(await status.textContent()).toBe('Refreshing every 5 s while deliveries are pending.');
  // Keyboard focus on the row survives the refreshes.
  await row(pending.id).locator('.row-button').focus();

  await h.db.query(`update deliveries set status = 'delivered', delivered_at = now(), attempt_count = 1 where id = $1`, [pending.id]);
  await soon(async () => (await row(pending.id).getAttribute('data-status')) === 'delivered', 12_000);
  expect(await page.evaluate("document.activeElement?.closest('.delivery-row')?.dataset.deliveryId")).toBe(pending.id);
  await soon(async () => (await status.textContent()) === 'Auto-refresh: no pending delivery shown.');

  // Off: a new pending delivery (shown by a manual refresh) is not followed.
  const second = await seed(account.id, ep.id, 0.05, 'pending');
  await page.getByTestId('auto-refresh').uncheck();
  expect(await status.textContent()).toBe('Auto-refresh is off.');
  await page.getByTestId('refresh-log').click();
  await row(second.id).waitFor();
  await h.db.query(`update deliveries set status = 'delivered', delivered_at = now(), attempt_count = 1 where id = $1`, [second.id]);
  await new Promise((r) => setTimeout(r, 6500));
  expect(await row(second.id).getAttribute('data-status')).toBe('pending');
  await page.getByTestId('auto-refresh').check();
  await soon(async () => (await row(second.id).getAttribute('data-status')) === 'delivered', 3_000);
});

test('when the log is filtered on undeliverable deliveries, then Resend all matching asks with the count and resends every one of them', async () => {
  const account = await newAccount(h);
  const ep = await endpoint(account.apiKey, '/bulk');
  const failed = [await seed(account.id, ep.id, 5, 'undeliverable'), await seed(account.id, ep.id, 4, 'undeliverable'), await seed(account.id, ep.id, 3, 'undeliverable')];
  const cancelled = await seed(account.id, ep.id, 2, 'cancelled');
  await seed(account.id, ep.id, 1, 'delivered');

  await page.goto(await portalUrl(account.id));
  await row(cancelled.id).waitFor();
  expect(await page.getByTestId('bulk-resend').isVisible()).toBe(false);
  expect(await page.getByTestId('bulk-resend-help').textContent()).toMatch(/Status: Undeliverable or Cancelled/);

  await page.getByTestId('filter-status').selectOption('undeliverable');
  await soon(async () => (await shownIds()).length === 3);
  await page.getByTestId('bulk-resend').click();
  const ok = page.getByTestId('confirm-bulk-resend');
  await ok.waitFor();
  expect(await page.locator('#confirm-title').textContent()).toBe('Resend 3 undeliverable deliveries?');
  expect(await ok.textContent()).toBe('Resend 3');
  await screenshot(page, 'bulk-resend-desktop', { docs: true, fullPage: false });
  await ok.click();

  await soon(async () => new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size === 3);
  expect([...new Set(receiver.requests.map((r) => String(r.headers['webhook-id'])))].sort()).toEqual(failed.map((d) => d.id).sort());
  await soon(async () => /Resent 3 deliveries/.test((await page.getByTestId('status-region').textContent()) ?? ''));
  // The filter went back to every status, so the resent ones show (pending, then delivered by auto-refresh).
  await soon(async () => {
    for (const d of failed) if ((await row(d.id).getAttribute('data-status')) !== 'delivered') return false;
    return true;
  }, 20_000);
  expect(await row(cancelled.id).getAttribute('data-status')).toBe('cancelled');
});

test('when the verification snippets are opened next to the secret, then each language has a tab (arrow keys move between them) with code for both signature headers and a Copy button', async () => {
  const account = await newAccount(h);
  const ep = await endpoint(account.apiKey, '/verify');
  await page.goto(await portalUrl(account.id));
  const card = cardOf(ep.id);
  const snippets = card.getByTestId('verify-snippets');
  await snippets.locator('summary').click();
  const tabs = snippets.getByRole('tab');
  expect(await tabs.allTextContents()).toEqual(['Node', 'Python', 'Go', 'PHP', 'Ruby']);
  expect(await snippets.getByTestId('snippet-node').isVisible()).toBe(true);
  const node = (await snippets.getByTestId('snippet-node').locator('code').textContent())!;
  for (const needle of ["headers['x-rr-signature']", "headers['webhook-signature']", 'webhook-timestamp', 'whsec_', 'timingSafeEqual'])
    expect([needle, node.includes(needle)]).toEqual([needle, true]);
  await card.getByTestId('secret-value').evaluate((n: any) => n.scrollIntoView({ block: 'start' }));
  await screenshot(page, 'snippets-desktop', { docs: true, fullPage: false });

  await snippets.getByTestId('snippet-tab-node').focus();
  await page.keyboard.press('ArrowRight');
  expect(await snippets.getByTestId('snippet-tab-python').getAttribute('aria-selected')).toBe('true');
  expect(await page.evaluate("document.activeElement?.getAttribute('data-testid')")).toBe('snippet-tab-python');
  expect(await snippets.getByTestId('snippet-python').isVisible()).toBe(true);
  expect(await snippets.getByTestId('snippet-node').isVisible()).toBe(false);
  expect(await snippets.getByTestId('snippet-python').textContent()).toContain('def verify_webhook_signature');
  await page.keyboard.press('End');
  expect(await snippets.getByTestId('snippet-tab-ruby').getAttribute('aria-selected')).toBe('true');
  await page.keyboard.press('ArrowRight');
  expect(await snippets.getByTestId('snippet-tab-node').getAttribute('aria-selected')).toBe('true');
  await snippets.getByTestId('snippet-tab-go').click();
  expect(await snippets.getByTestId('snippet-go').textContent()).toContain('func VerifyWebhookSignature');
  await snippets.getByTestId('copy-snippet-go').click();
  await soon(async () => /Go verification code copied|Copying is not available/.test((await page.getByTestId('status-region').textContent()) ?? ''));
});

test('when the page is opened on a 390 px phone, then the log is stacked cards with Status in view, the endpoint list comes before the form, and nothing scrolls sideways on any view', async () => {
  const account = await newAccount(h);
  const ep = await endpoint(account.apiKey, `/a/very/long/path/that/would/push/a/table/wide/${'x'.repeat(60)}`, 'Fulfilment');
  await seed(account.id, ep.id, 2, 'undeliverable');
  await seed(account.id, ep.id, 1, 'delivered', { test: true });
  const pending = await seed(account.id, ep.id, 0.2, 'pending');
  // A failed attempt with the headers a real one records (long signature values must wrap, not widen the page).
  const t = Math.floor(Date.now() / 1000) - 600;
  await recordAttempts(h.db, [
    {
      deliveryId: pending.id,
      series: 1,
      startedAt: new Date(t * 1000),
      durationMs: 212,
      statusCode: 503,
      error: 'HTTP 503',
      responseBody: 'upstream unavailable',
      nextAttemptAt: new Date(Date.now() + HOUR),
      requestHeaders: {
        'X-Api-Key': '••••9f2c',
        'content-type': 'application/json',
        'user-agent': 'rr-webhooks/0.1 (+https://github.com/rr-webhooks)',
        'webhook-id': pending.id,
        'webhook-timestamp': String(t),
        'webhook-signature': 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,3Xq8ZbT0yF1mLw9oR2cV7nHs4KdJ6aPu5eYiGxQz0Bc=',
        'x-rr-signature': '2b9a19fcd37de59f5456ed4b1f4266f55342867919da63fda3d0d337f1ffa48e',
        'content-length': '97',
      },
      responseHeaders: {
        'content-type': 'text/plain; charset=utf-8',
        'x-request-id': 'req_01JM6Z5B2C4V6B8N0M2Q4W6E8R',
        'retry-after': '3600',
        via: '1.1 varnish, 1.1 a-very-long-proxy-host-name-that-would-push-the-card-wide.example.net',
        date: new Date(t * 1000).toUTCString(),
      },
      outcome: '5xx',
    },
  ]);

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, timezoneId: TIME_ZONE });
  const p = await phone.newPage();
  await p.goto(await portalUrl(account.id));
  await row(pending.id, p).waitFor();
  const noSidewaysScroll = async () => expect(Number(await p.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(390);
  await noSidewaysScroll();

  const list = await p.getByTestId('endpoint-list').boundingBox();
  const form = await p.getByTestId('endpoint-form').boundingBox();
  expect(list!.y).toBeLessThan(form!.y);

  for (const r of await rows(p).all()) {
    const box = (await r.boundingBox())!;
    const statusBox = (await r.getByTestId('delivery-status').boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    expect(statusBox.x + statusBox.width).toBeLessThanOrEqual(390);
    expect(statusBox.width).toBeGreaterThan(0);
  }
  await p.locator('.log-tools').evaluate((n: any) => n.scrollIntoView({ block: 'start' }));
  await screenshot(p, 'delivery-log-phone', { docs: true, fullPage: false });

  // The details of a delivery (its attempts stacked too, their headers open), the endpoint's page and the catalog fit as well.
  await row(pending.id, p).click();
  await p.getByTestId('delivery-details').waitFor();
  await noSidewaysScroll();
  for (const kind of ['request', 'response']) {
    const panel = p.getByTestId(`${kind}-headers`).first();
    await panel.locator('summary').focus();
    await p.keyboard.press('Enter');
    await soon(async () => panel.evaluate((d: any) => d.open as boolean));
  }
  expect(await p.getByTestId('request-headers').first().textContent()).toContain('X-Api-Key••••9f2c');
  await noSidewaysScroll();
  await dismissToast(p);
  await p
    .getByTestId('attempt-row')
    .first()
    .evaluate((n: any) => n.scrollIntoView({ block: 'start' }));
  await screenshot(p, 'attempt-headers-phone', { docs: true, fullPage: false });
  await p.evaluate(`location.hash = '#/endpoints/${ep.id}'`);
  await p.getByTestId('endpoint-page-url').waitFor();
  await cardOf(ep.id, p).getByTestId('verify-snippets').locator('summary').click();
  await noSidewaysScroll();
  await p.evaluate('window.scrollTo(0, 0)');
  await screenshot(p, 'endpoint-page-phone', { docs: true, fullPage: false });
  await p.getByTestId('back-to-endpoints').click();
  await p.locator('[data-testid="catalog-item"][data-event-type="referrer_added"]').getByTestId('catalog-schema').locator('summary').click();
  await noSidewaysScroll();
  await phone.close();
});
