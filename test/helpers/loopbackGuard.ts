import { isIP } from 'node:net';
import { DestinationGuard } from '../../src/http/destinationGuard';
import type { Config } from '../../src/config';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$/;
const bare = (host: string) => host.replace(/^\[|\]$/g, '');

/**
 * The service's own destination policy, narrowed to loopback: names other than `localhost`
 * do not resolve (no DNS query leaves the machine) and every public address is refused, at
 * save time and at connect time. For tests that let a fuzzer choose endpoint URLs.
 */
export class LoopbackOnlyGuard extends DestinationGuard {
  constructor(cfg: Config) {
    super({ allowCidrs: cfg.DESTINATION_ALLOW_CIDRS, allowHttp: cfg.ALLOW_HTTP }, async (hostname) => {
      if (hostname.toLowerCase() === 'localhost') return [{ address: '127.0.0.1', family: 4 }];
      throw new Error(`${hostname}: not resolved in this test (loopback only)`);
    });
  }

  override async check(raw: string): Promise<string | undefined> {
    const problem = await super.check(raw);
    if (problem) return problem;
    const host = bare(new URL(raw).hostname);
    return !isIP(host) || LOOPBACK.test(host) ? undefined : `${host}: only loopback destinations in this test`;
  }

  override literalProblem(hostname: string): string | undefined {
    const host = bare(hostname);
    if (isIP(host) && !LOOPBACK.test(host)) return `${host}: only loopback destinations in this test`;
    return super.literalProblem(hostname);
  }
}
