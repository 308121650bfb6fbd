import { AllowList, classifyAddress } from '../../src/domain/destinationPolicy';
import { DestinationGuard, type Resolver } from '../../src/http/destinationGuard';

const none = new AllowList([]);

test.each([
  ['127.0.0.1'], ['10.0.0.5'], ['172.16.3.4'], ['192.168.1.1'], ['169.254.169.254'], ['100.64.0.1'], ['0.0.0.0'],
  ['224.0.0.1'], ['255.255.255.255'], ['::1'], ['::'], ['fe80::1'], ['fd00::1'], ['ff02::1'], ['::ffff:10.0.0.1'], ['::ffff:127.0.0.1'],
])('when %s is checked, then it is blocked', (ip) => {
  expect(classifyAddress(ip, none)).toBe('blocked');
});

test.each([['93.184.216.34'], ['8.8.8.8'], ['2606:4700:4700::1111']])('when public %s is checked, then it is allowed', (ip) => {
  expect(classifyAddress(ip, none)).toBe('public');
});

test('when a private subnet is allow-listed, then only that subnet opens', () => {
  const allow = new AllowList(['127.0.0.0/8', '10.1.0.0/16']);
  expect(classifyAddress('127.0.0.1', allow)).toBe('allowed-private');
  expect(classifyAddress('10.1.2.3', allow)).toBe('allowed-private');
  expect(classifyAddress('10.2.0.1', allow)).toBe('blocked');
});

const fakeDns = (table: Record<string, string[]>): Resolver => async (host) => {
  if (!table[host]) throw new Error('ENOTFOUND');
  return table[host].map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

test('when a hostname resolves to a private address, then saving is refused; public hosts pass; http only for allowed private', async () => {
  const guard = new DestinationGuard({ allowCidrs: ['127.0.0.0/8'], allowHttp: false }, fakeDns({ 'evil.example': ['93.184.216.34', '10.0.0.7'], 'good.example': ['93.184.216.34'], 'local.example': ['127.0.0.1'] }));
  expect(await guard.check('https://evil.example/hook')).toMatch(/private or reserved/);
  expect(await guard.check('https://good.example/hook')).toBeUndefined();
  expect(await guard.check('http://good.example/hook')).toBe('must use https');
  expect(await guard.check('http://local.example:8080/hook')).toBeUndefined();
  expect(await guard.check('https://nowhere.example/')).toMatch(/does not resolve/);
  expect(await guard.check('https://[fd00::1]/')).toMatch(/private/);
  expect(await guard.check('https://user:pw@good.example/')).toMatch(/credentials/);
  expect(await guard.check('not a url')).toMatch(/absolute URL/);
});

test('when DNS changes after saving, then the connect-time lookup refuses the private answer', async () => {
  const dns: Record<string, string[]> = { 'flip.example': ['93.184.216.34'] };
  const guard = new DestinationGuard({ allowCidrs: [], allowHttp: false }, fakeDns(dns));
  expect(await guard.check('https://flip.example/')).toBeUndefined();
  dns['flip.example'] = ['169.254.169.254'];
  const err = await new Promise<Error | null>((ok) => guard.lookup('flip.example', {}, (e) => ok(e)));
  expect(err?.message).toMatch(/forbidden address 169\.254\.169\.254/);
  expect(guard.literalProblem('10.0.0.1')).toMatch(/forbidden/);
  expect(guard.literalProblem('93.184.216.34')).toBeUndefined();
});
