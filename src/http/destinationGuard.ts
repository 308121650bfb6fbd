import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { AllowList, classifyAddress, schemeProblem, urlProblem, type DestinationPolicy } from '../domain/destinationPolicy';

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

export class DestinationForbiddenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DestinationForbiddenError';
  }
}

/**
 * Applies the destination policy with real DNS. `check` is for save time (every address the
 * name resolves to must be allowed); `lookup` is a net.connect lookup hook that refuses to
 * connect to a forbidden address, so a DNS answer that changed after saving is caught too.
 */
export class DestinationGuard {
  private readonly allow: AllowList;
  constructor(
    private readonly policy: DestinationPolicy,
    private readonly resolve: Resolver = systemResolver,
  ) {
    this.allow = new AllowList(policy.allowCidrs);
  }

  /** Returns a problem sentence for the URL, or undefined when it may be used. */
  async check(raw: string): Promise<string | undefined> {
    const problem = urlProblem(raw);
    if (problem) return problem;
    const url = new URL(raw);
    let addresses: string[];
    try {
      addresses = await this.addressesOf(url.hostname);
    } catch {
      return `host ${url.hostname} does not resolve`;
    }
    const verdicts = addresses.map((a) => classifyAddress(a, this.allow));
    if (verdicts.includes('blocked')) return `host ${url.hostname} resolves to a private or reserved address, which is not allowed`;
    return schemeProblem(url, verdicts, this.policy);
  }

  private async addressesOf(hostname: string): Promise<string[]> {
    const bare = hostname.replace(/^\[|\]$/g, '');
    if (isIP(bare)) return [bare];
    const found = await this.resolve(bare);
    if (found.length === 0) throw new Error('no addresses');
    return found.map((a) => a.address);
  }

  /** A lookup function for http.request that only ever yields allowed addresses. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.addressesOf(hostname).then(
      (addresses) => {
        const bad = addresses.find((a) => classifyAddress(a, this.allow) === 'blocked');
        if (bad) {
          callback(new DestinationForbiddenError(`${hostname} resolved to forbidden address ${bad}`), '', 4);
          return;
        }
        const entries = addresses.map((address) => ({ address, family: isIP(address) }));
        if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, entries);
        else callback(null, entries[0].address, entries[0].family);
      },
      (err: Error) => callback(err as NodeJS.ErrnoException, '', 4),
    );
  };

  /** Connect-time check for IP-literal URLs, which never go through `lookup`. */
  literalProblem(hostname: string): string | undefined {
    const bare = hostname.replace(/^\[|\]$/g, '');
    if (!isIP(bare)) return undefined;
    return classifyAddress(bare, this.allow) === 'blocked' ? `${bare} is a forbidden address` : undefined;
  }
}
