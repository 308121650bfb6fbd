import { ConfigError, loadConfig } from '../../src/config';
import { formatDuration, parseDuration } from '../../src/domain/duration';

test('when nothing is set, then production defaults apply; embedded mode opens loopback', () => {
  const prod = loadConfig({});
  expect(prod.DELIVERY_WINDOW).toBe(3 * 86_400_000);
  expect(prod.ATTEMPT_TIMEOUT).toBe(15_000);
  expect(prod.DESTINATION_ALLOW_CIDRS).toEqual([]);
  expect(prod.HOST).toBe('0.0.0.0');
  const embedded = loadConfig({}, { embedded: true });
  expect(embedded.DESTINATION_ALLOW_CIDRS).toEqual(['127.0.0.0/8', '::1/128']);
  expect(embedded.HOST).toBe('127.0.0.1');
  expect(Object.isFrozen(prod)).toBe(true);
});

test('when DESTINATION_ALLOW_CIDRS is set but empty, then the allow-list is empty, in embedded mode too; other empty variables still mean unset', () => {
  expect(loadConfig({ DESTINATION_ALLOW_CIDRS: '' }, { embedded: true }).DESTINATION_ALLOW_CIDRS).toEqual([]);
  expect(loadConfig({ DESTINATION_ALLOW_CIDRS: ' , ' }, { embedded: true }).DESTINATION_ALLOW_CIDRS).toEqual([]);
  expect(loadConfig({ DESTINATION_ALLOW_CIDRS: '' }).DESTINATION_ALLOW_CIDRS).toEqual([]);
  expect(loadConfig({ DESTINATION_ALLOW_CIDRS: '10.1.0.0/16' }, { embedded: true }).DESTINATION_ALLOW_CIDRS).toEqual(['10.1.0.0/16']);
  const blanks = loadConfig({ PORT: '', HOST: '', PUBLIC_URL: '', DATABASE_URL: '' }, { embedded: true });
  expect([blanks.PORT, blanks.HOST, blanks.PUBLIC_URL, blanks.DATABASE_URL]).toEqual([3000, '127.0.0.1', undefined, undefined]);
});

test('when values are bad, then one error names every bad variable', () => {
  expect(() => loadConfig({ PORT: 'eighty', DELIVERY_WINDOW: 'forever', DATABASE_URL: 'mysql://x' })).toThrow(ConfigError);
  try {
    loadConfig({ PORT: 'eighty', DELIVERY_WINDOW: 'forever', DATABASE_URL: 'mysql://x' });
  } catch (err) {
    expect((err as Error).message).toMatch(/PORT=/);
    expect((err as Error).message).toMatch(/DELIVERY_WINDOW=.*duration/);
    expect((err as Error).message).toMatch(/DATABASE_URL=/);
  }
});

test.each([
  ['15s', 15_000],
  ['5m', 300_000],
  ['12h', 43_200_000],
  ['3d', 259_200_000],
  ['250', 250],
  ['1.5h', 5_400_000],
])('when "%s" is parsed, then it is %i ms', (text, ms) => {
  expect(parseDuration(text)).toBe(ms);
});

test('when durations are formatted, then they read like the README table', () => {
  expect(formatDuration(90_000)).toBe('1m30s');
  expect(formatDuration(43_200_000)).toBe('12h');
  expect(parseDuration('soon')).toBeUndefined();
});

test('when the README configuration table is read, then it documents every setting with its default', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const readme: string = require('node:fs').readFileSync(require('node:path').join(__dirname, '..', '..', 'README.md'), 'utf8');
  const { SETTINGS } = jest.requireActual('../../src/config') as typeof import('../../src/config');
  for (const [name, s] of Object.entries(SETTINGS) as [string, { default?: string }][]) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    expect([name, row !== undefined]).toEqual([name, true]);
    if (s.default) expect([name, row!.includes(`\`${s.default}\``)]).toEqual([name, true]);
  }
});

test('when rate limits are read, then N/window gives points and whole-second windows, off gives none, and a bad one names its variable', () => {
  const d = loadConfig({});
  expect([d.RATE_LIMIT_API, d.RATE_LIMIT_SEND, d.RATE_LIMIT_AUTH_FAILURES, d.RATE_LIMIT_ADMIN]).toEqual([
    { points: 100, windowSeconds: 1 },
    { points: 30, windowSeconds: 60 },
    { points: 30, windowSeconds: 60 },
    null,
  ]);
  expect([d.MAX_ENDPOINTS_PER_ACCOUNT, d.TRUSTED_PROXY_HOPS]).toEqual([50, 0]);
  const set = loadConfig({ RATE_LIMIT_API: ' 600 / 1m ', RATE_LIMIT_ADMIN: '20000/1s', RATE_LIMIT_SEND: 'OFF' });
  expect([set.RATE_LIMIT_API, set.RATE_LIMIT_ADMIN, set.RATE_LIMIT_SEND]).toEqual([{ points: 600, windowSeconds: 60 }, { points: 20000, windowSeconds: 1 }, null]);
  for (const bad of ['100', '0/1s', '10/500ms', '10/1.5s', '10/2d', 'ten/1s', '-1/1s']) {
    expect(() => loadConfig({ RATE_LIMIT_API: bad })).toThrow(/RATE_LIMIT_API=.*N\/window/);
  }
});
