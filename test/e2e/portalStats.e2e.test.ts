import type { Browser, BrowserContext, Page } from 'playwright-core';
import { recordAttempts, type AttemptRecord } from '../../src/db/deliveries';
import { newId } from '../../src/domain/ids';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';
import { launchBrowser, screenshot } from '../helpers/browser';

let h: Harness;
let browser: Browser;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  h = await startHarness({}, { worker: false });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
});
beforeEach(async () => {
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
});
afterEach(async () => {
  await context.close();
});

async function portalUrl(accountId: string): Promise<string> {
  const res = await h.call('POST', `/v1/accounts/${accountId}/portal-links`, { body: {} });
  expect(res.status).toBe(201);
  return res.body.url;
}

/** 24 hours of attempts: ~100 ms answers, slower and failing in an incident 6 hours ago, one timeout 30 min ago. */
async function seedDay(accountId: string, endpointId: string): Promise<{ total: number; succeeded: number }> {
  const now = Date.now();
  const records: AttemptRecord[] = [];
  let succeeded = 0;
  const delivery = async () => {
    const eventId = newId('evt');
    const id = newId('dlv');
    await h.db.query(`insert into events (id, account_id, event_type, body) values ($1, $2, 'referrer_added', '{}')`, [eventId, accountId]);
    await h.db.query(
      `insert into deliveries (id, account_id, event_id, endpoint_id, event_type, status, dispatched_series) values ($1, $2, $3, $4, 'referrer_added', 'delivered', 1)`,
      [id, accountId, eventId, endpointId],
    );
    return id;
  };
  for (let i = 0; i < 288; i++) {
    const at = now - 23.5 * 3_600_000 + i * 4.85 * 60_000;
    const hoursAgo = (now - at) / 3_600_000;
    const incident = hoursAgo > 5.5 && hoursAgo < 7;
    const ms = incident ? 900 + (i % 7) * 150 : 60 + (i % 11) * 12;
    const fail = incident && i % 3 === 0;
    if (!fail) succeeded++;
    const deliveryId = await delivery();
    records.push(
      fail
        ? { deliveryId, series: 1, startedAt: new Date(at), durationMs: ms, statusCode: 503, error: 'HTTP 503', outcome: '5xx' }
        : { deliveryId, series: 1, startedAt: new Date(at), durationMs: ms, statusCode: 200, delivered: true, outcome: '2xx' },
    );
  }
  records.push({ deliveryId: await delivery(), series: 1, startedAt: new Date(now - 30 * 60_000), durationMs: 5000, error: 'timed out after 5000 ms', outcome: 'timeout' });
  for (let i = 0; i < records.length; i += 50) await recordAttempts(h.db, records.slice(i, i + 50));
  return { total: records.length, succeeded };
}

test('when an endpoint has a day of attempts, then its card shows the success rate, attempts, p50/p95, both charts and the last error, and the period can be changed', async () => {
  const account = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', {
    token: account.apiKey,
    body: { url: 'http://127.0.0.1:9/referrals', eventTypes: ['referrer_added'], description: 'CRM sync' },
  });
  const { total, succeeded } = await seedDay(account.id, ep.body.id);
  const api = (await h.call('GET', `/v1/endpoints/${ep.body.id}/stats?window=24h`, { token: account.apiKey })).body;
  expect(api.totals.attempts).toBe(total);

  await page.goto(await portalUrl(account.id));
  const card = page.getByTestId('endpoint-card').first();
  await card.getByTestId('chart-outcomes-svg').waitFor();
  expect(await card.getByTestId('stats-attempts').textContent()).toBe(String(total));
  expect(await card.getByTestId('stats-success-rate').textContent()).toBe(`${((succeeded / total) * 100).toFixed(1)} %`);
  expect(await card.getByTestId('stats-latency').textContent()).toBe(`${api.totals.p50Ms} ms / ${api.totals.p95Ms} ms`);
  expect(await card.getByTestId('stats-failures').textContent()).toMatch(/^Failures: \d+ × 5xx, 1 × timeout\.$/);
  expect(await card.getByTestId('stats-last-error').textContent()).toMatch(/^Last error: timed out after 5000 ms \(.+\)$/);
  // Charts: one bar group per bucket with attempts, a described image for screen readers.
  const bars = await card.locator('[data-testid="chart-outcomes-svg"] g').count();
  expect(bars).toBe(api.buckets.filter((b: { attempts: number }) => b.attempts > 0).length);
  expect(await card.locator('[data-testid="chart-outcomes-svg"] .bar-fail').count()).toBeGreaterThan(0);
  expect(await card.getByTestId('chart-outcomes-svg').getAttribute('aria-label')).toMatch(/^Successes and failures per 15 minutes, last 24 hours: \d+ succeeded, \d+ failed/);
  expect(await card.getByTestId('chart-latency-svg').getAttribute('aria-label')).toMatch(/^Response time, last 24 hours: median \d+ ms, 95th percentile \d+ ms/);
  expect(await card.locator('[data-testid="chart-latency-svg"] path.line-p50').count()).toBeGreaterThan(0);
  await screenshot(page, 'stats-desktop', { docs: true });

  // Keyboard: the period select is labelled and changes the figures.
  const select = card.getByTestId('stats-window');
  expect(await select.evaluate((s: any) => s.labels[0].textContent)).toBe('Period of the delivery stats');
  await select.focus();
  await select.selectOption('1h');
  await expectSoon(async () => (await card.getByTestId('endpoint-stats').getAttribute('data-window')) === '1h');
  const hour = (await h.call('GET', `/v1/endpoints/${ep.body.id}/stats?window=1h`, { token: account.apiKey })).body;
  expect(await card.getByTestId('stats-attempts').textContent()).toBe(String(hour.totals.attempts));

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const p = await phone.newPage();
  await p.goto(await portalUrl(account.id));
  await p.getByTestId('chart-latency-svg').waitFor();
  expect(Number(await p.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'))).toBeLessThanOrEqual(1);
  await p.getByTestId('endpoint-stats').first().scrollIntoViewIfNeeded();
  await screenshot(p, 'stats-phone', { docs: true, fullPage: false });
  await phone.close();
});

test('when an endpoint has no attempts yet, then its card says so without charts to misread', async () => {
  const account = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: 'http://127.0.0.1:9/new', eventTypes: ['referrer_added'] } });
  await page.goto(await portalUrl(account.id));
  const card = page.getByTestId('endpoint-card').first();
  await card.getByTestId('chart-outcomes-svg').waitFor();
  expect(await card.getByTestId('stats-success-rate').textContent()).toBe('—');
  expect(await card.getByTestId('stats-attempts').textContent()).toBe('0');
  expect(await card.getByTestId('chart-outcomes-svg').getAttribute('aria-label')).toBe('No attempts in the last 24 hours.');
  expect(await card.getByTestId('stats-last-error').isVisible()).toBe(false);
});

async function expectSoon(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('when a customer adds custom headers in the form, then the card lists their names, a reserved one is refused next to the field, and editing shows and replaces them', async () => {
  const account = await newAccount(h);
  await page.goto(await portalUrl(account.id));
  await page.getByTestId('endpoint-url').fill('http://127.0.0.1:9/gateway');
  await page.getByTestId('event-type-referrer_added').check();
  await page.getByTestId('endpoint-headers').fill('Authorization: Bearer gw_abc\nWebhook-Signature: v1,forged');
  await page.getByTestId('save-endpoint').click();
  await page.getByTestId('field-error-headers').waitFor();
  expect(await page.getByTestId('field-error-headers').textContent()).toMatch(/^Webhook-Signature: "Webhook-Signature" is set by the service/);
  expect(await page.getByTestId('endpoint-headers').getAttribute('aria-invalid')).toBe('true');
  expect(await page.getByTestId('endpoint-headers').getAttribute('aria-describedby')).toBe('endpoint-headers-help field-error-headers');

  await screenshot(page, 'custom-headers-form', { docs: true });
  await page.getByTestId('endpoint-headers').fill('Authorization: Bearer gw_abc\nX-Tenant: acme');
  await page.getByTestId('save-endpoint').click();
  await page.getByTestId('new-secret-notice').waitFor();
  const card = page.getByTestId('endpoint-card').first();
  await card.getByTestId('endpoint-card-headers').waitFor();
  expect(await card.getByTestId('endpoint-card-headers').textContent()).toBe('Custom headers: Authorization, X-Tenant');
  expect(await page.textContent('[data-testid="endpoint-list"]')).not.toContain('gw_abc'); // names only on the card
  const [ep] = (await h.call('GET', '/v1/endpoints', { token: account.apiKey })).body.data;
  expect(ep.headers).toEqual({ Authorization: 'Bearer gw_abc', 'X-Tenant': 'acme' });

  await card.getByTestId('edit-endpoint').click();
  expect(await page.getByTestId('endpoint-headers').inputValue()).toBe('Authorization: Bearer gw_abc\nX-Tenant: acme');
  await page.getByTestId('endpoint-headers').fill('X-Tenant: globex');
  await page.getByTestId('save-endpoint').click();
  await expectSoon(async () => (await card.getByTestId('endpoint-card-headers').textContent()) === 'Custom headers: X-Tenant');
  expect((await h.call('GET', `/v1/endpoints/${ep.id}`, { token: account.apiKey })).body.headers).toEqual({ 'X-Tenant': 'globex' });
});
