import { BlockList, isIP } from 'node:net';

/**
 * Where webhooks may go. Public unicast addresses only, unless a private subnet is listed in
 * DESTINATION_ALLOW_CIDRS. Checked when an endpoint is saved and again at connect time,
 * because DNS answers can change in between.
 */
const BLOCKED_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
/**
 * IPv6 ranges that are never a webhook destination (IANA IPv6 Special-Purpose Address
 * Registry). Addresses that embed an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT, NAT64
 * 64:ff9b::/96, 6to4) are not listed: `embeddedIPv4` extracts the IPv4 and the IPv4 rules
 * decide. Everything outside 2000::/3 (global unicast) is reserved, so it is blocked as a whole;
 * the entries below that lie outside it are listed anyway, to say what they are.
 */
const BLOCKED_V6: [string, number][] = [
  ['::', 3], // with the next two: everything outside 2000::/3 (unspecified, loopback, reserved ::/8 …)
  ['4000::', 2],
  ['8000::', 1],
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215)
  ['100::', 64], // discard-only (RFC 6666)
  ['100:0:0:1::', 64], // dummy prefix (RFC 9780)
  ['5f00::', 16], // SRv6 SIDs (RFC 9602)
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
  // Inside 2000::/3:
  ['2001::', 23], // IETF protocol assignments: Teredo 2001::/32 (tunnels to an embedded IPv4), PCP/TURN/DNS-SD
  //                 anycast 2001:1::1-3 (the nearest local service), benchmarking 2001:2::/48, AMT 2001:3::/32,
  //                 AS112 2001:4:112::/48, ORCHID 2001:10::/28, ORCHIDv2 2001:20::/28 and DETs 2001:30::/28
  //                 (identifiers, non-routable at the IPv6 layer per RFC 7343). None of it is a web host.
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
];

// Two lists: a BlockList also matches IPv4 addresses against IPv6 rules (as ::ffff:a.b.c.d), and ::/3 covers those.
const blockedV4 = new BlockList();
for (const [net, prefix] of BLOCKED_V4) blockedV4.addSubnet(net, prefix, 'ipv4');
const blockedV6 = new BlockList();
for (const [net, prefix] of BLOCKED_V6) blockedV6.addSubnet(net, prefix, 'ipv6');

export interface DestinationPolicy {
  allowCidrs: readonly string[];
  allowHttp: boolean;
}

export class AllowList {
  private readonly list = new BlockList();
  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [net, prefixText] = cidr.split('/');
      const family = isIP(net);
      const prefix = Number(prefixText ?? (family === 6 ? 128 : 32));
      if (!family || !Number.isInteger(prefix)) throw new Error(`invalid CIDR in DESTINATION_ALLOW_CIDRS: ${cidr}`);
      this.list.addSubnet(net, prefix, family === 6 ? 'ipv6' : 'ipv4');
    }
  }
  has(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** The eight 16-bit groups of an IPv6 address in any textual form (`::`, dotted tail, `%zone`), or undefined. */
export function ipv6Groups(address: string): number[] | undefined {
  const bare = address.replace(/%.*$/, '');
  if (isIP(bare) !== 6) return undefined;
  let text = bare;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  const groups = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
const zero = (groups: number[], from: number, to: number) => groups.slice(from, to).every((g) => g === 0);

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one that the connection would
 * end up at: IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96 (deprecated; `::` and `::1`
 * become 0.0.0.0 and 0.0.0.1), SIIT ::ffff:0:0:0/96, NAT64 64:ff9b::/96 (the last 32 bits) and
 * 6to4 2002::/16 (bits 16–47). Teredo (2001::/32) is blocked outright instead.
 */
export function embeddedIPv4(groups: number[]): string | undefined {
  if (zero(groups, 0, 5) && (groups[5] === 0xffff || groups[5] === 0)) return v4(groups[6], groups[7]); // mapped, compatible
  if (zero(groups, 0, 4) && groups[4] === 0xffff && groups[5] === 0) return v4(groups[6], groups[7]); // SIIT
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zero(groups, 2, 6)) return v4(groups[6], groups[7]); // NAT64 well-known prefix
  if (groups[0] === 0x2002) return v4(groups[1], groups[2]); // 6to4
  return undefined;
}

export type AddressVerdict = 'public' | 'allowed-private' | 'blocked';

/**
 * One verdict for an address in any textual form, used at save time and at connect time alike.
 * An allow-listed address is `allowed-private`. An IPv6 address that embeds an IPv4 address
 * gets that IPv4 address's verdict (allow-list included), so `::ffff:127.0.0.1`,
 * `64:ff9b::7f00:1` and `2002:7f00:1::` are 127.0.0.1.
 */
export function classifyAddress(address: string, allow: AllowList): AddressVerdict {
  if (isIP(address) === 4) {
    if (allow.has(address)) return 'allowed-private';
    return blockedV4.check(address, 'ipv4') ? 'blocked' : 'public';
  }
  const groups = ipv6Groups(address);
  if (!groups) return 'blocked';
  const full = groups.map((g) => g.toString(16)).join(':');
  if (allow.has(full)) return 'allowed-private';
  const embedded = embeddedIPv4(groups);
  if (embedded) return classifyAddress(embedded, allow);
  return blockedV6.check(full, 'ipv6') ? 'blocked' : 'public';
}

/** Static URL rules that need no DNS: a problem sentence, or undefined when the URL may be used. */
export function urlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL such as https://example.com/webhooks';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must use https';
  if (url.username || url.password) return 'must not contain credentials';
  if (!url.hostname) return 'must have a host';
  if (raw.length > 2048) return 'must be at most 2048 characters';
  return undefined;
}

/** Plain http is allowed only by ALLOW_HTTP or towards an allow-listed private address. */
export function schemeProblem(url: URL, verdicts: AddressVerdict[], policy: DestinationPolicy): string | undefined {
  if (url.protocol === 'https:' || policy.allowHttp) return undefined;
  if (verdicts.length > 0 && verdicts.every((v) => v === 'allowed-private')) return undefined;
  return 'must use https';
}
