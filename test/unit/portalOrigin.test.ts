import { httpOrigin, listeningOrigin } from '../../src/api/origin';
import { portalLink } from '../../src/api/routes/accounts';
import type { Config } from '../../src/config';

test.each([
  ['127.0.0.1', 3000, 'http://127.0.0.1:3000'],
  ['::ffff:10.0.0.5', 3000, 'http://10.0.0.5:3000'],
  ['::1', 8080, 'http://[::1]:8080'],
  ['fe80::1%eth0', 3000, 'http://[fe80::1]:3000'],
  ['2001:4860::1', 443, 'http://[2001:4860::1]:443'],
])('when the API socket is on %s port %i, then its origin is %s', (address, port, origin) => {
  expect(httpOrigin(address, port)).toBe(origin);
  expect(listeningOrigin({ localAddress: address, localPort: port })).toBe(origin);
});

test('when PUBLIC_URL is set, then a portal link uses it instead of the listening address', () => {
  const cfg = { PUBLIC_URL: 'https://hooks.example.com/', PORTAL_LINK_TTL: 60_000, PORTAL_LINK_MAX_TTL: 86_400_000, ADMIN_TOKENS_PREVIOUS: [] } as unknown as Config;
  const link = portalLink({ cfg, adminToken: 'admin-token-of-at-least-16' }, 'acc_1', {}, 'http://127.0.0.1:3000');
  expect(link.url).toMatch(/^https:\/\/hooks\.example\.com\/portal#token=/);
  const noPublic = portalLink(
    { cfg: { PORTAL_LINK_TTL: 60_000, PORTAL_LINK_MAX_TTL: 86_400_000, ADMIN_TOKENS_PREVIOUS: [] } as unknown as Config, adminToken: 'admin-token-of-at-least-16' },
    'acc_1',
    {},
    'http://127.0.0.1:3000',
  );
  expect(noPublic.url).toMatch(/^http:\/\/127\.0\.0\.1:3000\/portal#token=/);
});
