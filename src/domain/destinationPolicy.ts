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
const BLOCKED_V6: [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10],
  ['ff00::', 8], // multicast
];

const blocked = new BlockList();
for (const [net, prefix] of BLOCKED_V4) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of BLOCKED_V6) blocked.addSubnet(net, prefix, 'ipv6');

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

/** Unwraps IPv4-mapped IPv6 (`::ffff:10.0.0.1`) so it gets the IPv4 rules. */
function normalise(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1] : address;
}

export type AddressVerdict = 'public' | 'allowed-private' | 'blocked';

export function classifyAddress(address: string, allow: AllowList): AddressVerdict {
  const ip = normalise(address);
  const family = isIP(ip);
  if (family === 0) return 'blocked';
  if (allow.has(ip)) return 'allowed-private';
  return blocked.check(ip, family === 6 ? 'ipv6' : 'ipv4') ? 'blocked' : 'public';
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
