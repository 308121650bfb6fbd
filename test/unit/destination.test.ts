import { AllowList, classifyAddress } from '../../src/domain/destinationPolicy';
import { DestinationGuard, type Resolver } from '../../src/http/destinationGuard';

const none = new AllowList([]);

test.each([
  ['127.0.0.1'],
  ['10.0.0.5'],
  ['172.16.3.4'],
  ['192.168.1.1'],
  ['169.254.169.254'],
  ['100.64.0.1'],
  ['0.0.0.0'],
  ['224.0.0.1'],
  ['255.255.255.255'],
  ['::1'],
  ['::'],
  ['fe80::1'],
  ['fd00::1'],
  ['ff02::1'],
  ['::ffff:10.0.0.1'],
  ['::ffff:127.0.0.1'],
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

const fakeDns =
  (table: Record<string, string[]>): Resolver =>
  async (host) => {
    if (!table[host]) throw new Error('ENOTFOUND');
    return table[host].map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

test('when a hostname resolves to a private address, then saving is refused; public hosts pass; http only for allowed private', async () => {
  const guard = new DestinationGuard(
    { allowCidrs: ['127.0.0.0/8'], allowHttp: false },
    fakeDns({ 'evil.example': ['93.184.216.34', '10.0.0.7'], 'good.example': ['93.184.216.34'], 'local.example': ['127.0.0.1'] }),
  );
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

// IPv6 forms that embed an IPv4 address, and IPv6 special-purpose ranges (IANA registry): refused
// with an empty allow-list at save time, at connect time (IP literal) and as a DNS answer.
const embeddedOrSpecial: [string, string][] = [
  ['64:ff9b::a9fe:a9fe', 'NAT64 64:ff9b::/96 of 169.254.169.254'],
  ['64:ff9b::169.254.169.254', 'NAT64, dotted tail'],
  ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
  ['::127.0.0.1', 'IPv4-compatible ::/96 of 127.0.0.1'],
  ['::7f00:1', 'IPv4-compatible, as new URL() writes it'],
  ['::a9fe:a9fe', 'IPv4-compatible of 169.254.169.254'],
  ['2002:a9fe:a9fe::1', '6to4 2002::/16 of 169.254.169.254'],
  ['2002:7f00:1::', '6to4 of 127.0.0.1'],
  ['::ffff:0:7f00:1', 'SIIT ::ffff:0:0:0/96 of 127.0.0.1'],
  ['::ffff:0:169.254.169.254', 'SIIT, dotted tail'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped, hex tail'],
  ['2001::1', 'Teredo 2001::/32'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo with public server and client'],
  ['3fff::1', 'documentation 3fff::/20'],
  ['3fff:fff:ffff::1', 'documentation 3fff::/20, last /32'],
  ['5f00::1', 'SRv6 SIDs 5f00::/16'],
  ['2001:2::1', 'benchmarking 2001:2::/48'],
  ['2001:10::1', 'ORCHID 2001:10::/28'],
  ['2001:20::1', 'ORCHIDv2 2001:20::/28'],
  ['2001:1::1', 'PCP anycast (nearest local service)'],
  ['100::1', 'discard-only 100::/64'],
  ['100:0:0:1::1', 'dummy prefix 100:0:0:1::/64'],
  ['2001:db8::1', 'documentation 2001:db8::/32'],
  ['64:ff9b:1::a9fe:a9fe', 'local-use NAT64 64:ff9b:1::/48'],
  ['::2:3:4:5', 'reserved ::/8 (not an IPv4 embedding)'],
  ['1::1', 'reserved, outside global unicast 2000::/3'],
];

test.each(embeddedOrSpecial)('when [%s] (%s) is used with an empty allow-list, then it is refused at save time, at connect time and as a DNS answer', async (ip) => {
  const guard = new DestinationGuard({ allowCidrs: [], allowHttp: false }, fakeDns({ 'sneaky.example': [ip] }));
  const host = new URL(`https://[${ip}]/`).hostname; // normalised, e.g. [::127.0.0.1] → [::7f00:1]
  expect(classifyAddress(ip, none)).toBe('blocked');
  expect(classifyAddress(host.slice(1, -1), none)).toBe('blocked');
  expect(await guard.check(`https://[${ip}]/hook`)).toMatch(/private or reserved/);
  expect(guard.literalProblem(host)).toMatch(/forbidden/);
  const err = await new Promise<Error | null>((ok) => guard.lookup('sneaky.example', {}, (e) => ok(e)));
  expect(err?.message).toMatch(/forbidden address/);
});

test.each([
  ['64:ff9b::808:808'],
  ['64:ff9b::8.8.8.8'],
  ['2002:808:808::1'],
  ['::ffff:8.8.8.8'],
  ['::808:808'],
  ['2001:4860:4860::8888'],
  ['2a00:1450:4001:80b::200e'],
  ['2001:200::1'],
])('when %s embeds a public IPv4 or is ordinary global unicast, then it stays public', async (ip) => {
  expect(classifyAddress(ip, none)).toBe('public');
  const guard = new DestinationGuard({ allowCidrs: [], allowHttp: false }, fakeDns({}));
  expect(await guard.check(`https://[${ip}]/hook`)).toBeUndefined();
});

test('when loopback is allow-listed, then an IPv6 form embedding a loopback IPv4 behaves like that IPv4; other embedded IPv4s and Teredo stay blocked', async () => {
  const loopback = new AllowList(['127.0.0.0/8', '::1/128']);
  for (const ip of ['127.0.0.1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::127.0.0.1', '::7f00:1', '::ffff:0:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::1']) {
    expect([ip, classifyAddress(ip, loopback)]).toEqual([ip, 'allowed-private']);
  }
  for (const ip of ['64:ff9b::a9fe:a9fe', '::ffff:a9fe:a9fe', '2002:a00:1::1', '2001:0:4136:e378:8000:63bf:80ff:fffe']) {
    expect([ip, classifyAddress(ip, loopback)]).toEqual([ip, 'blocked']);
  }
  const guard = new DestinationGuard({ allowCidrs: ['127.0.0.0/8', '::1/128'], allowHttp: false }, fakeDns({}));
  // Plain http is allowed towards an allow-listed private address, in whichever form it is written.
  expect(await guard.check('http://[::ffff:127.0.0.1]:4000/hook')).toBeUndefined();
  expect(await guard.check('http://[::127.0.0.1]:4000/hook')).toBeUndefined();
  expect(guard.literalProblem('[::7f00:1]')).toBeUndefined();
});
