import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { capturedResponseHeaders } from '../domain/attemptHeaders';
import { traceSends } from '../tracing';
import { DestinationForbiddenError } from './destinationGuard';

export interface SendResult {
  statusCode?: number;
  retryAfter?: string;
  /** First bytes of the response body, as text. */
  bodyExcerpt?: string;
  /** The response's headers the delivery log keeps (capturedResponseHeaders: bounded, no cookies). */
  responseHeaders?: Record<string, string>;
  error?: string;
  timedOut?: boolean;
  /** The destination policy refused the address at connect time. */
  forbidden?: boolean;
  /** Stopped by `signal` before any of the request reached the OS: nothing was sent. */
  aborted?: boolean;
  durationMs: number;
}

/**
 * `signal` stops a request that has not been handed to the OS yet (e.g. still connecting); once
 * its bytes are out, the request runs to its end and its answer counts.
 */
export type WebhookSender = (url: string, headers: Record<string, string>, body: string, signal?: AbortSignal) => Promise<SendResult>;

export interface SenderOptions {
  timeoutMs: number;
  captureBytes: number;
  lookup?: LookupFunction;
  /** Connect-time refusal of IP-literal hosts, which bypass `lookup`. */
  literalProblem?: (hostname: string) => string | undefined;
}

/**
 * POSTs one webhook. Never follows redirects (a 3xx is a failure), gives up after
 * `timeoutMs` for the whole exchange, reads at most `captureBytes` of the response, keeps a
 * bounded subset of its headers, and reuses connections (keep-alive) across deliveries to the
 * same host.
 */
export function createWebhookSender(opts: SenderOptions): { send: WebhookSender; close(): void } {
  // No per-host socket cap here: a request the agent queued would start long after its sender
  // checked the endpoint. The delivery activities cap requests per origin (SendSlots) *before*
  // that check instead.
  const agentOptions = { keepAlive: true, lookup: opts.lookup };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  const send: WebhookSender = (rawUrl, headers, body, signal) =>
    new Promise((resolve) => {
      const started = performance.now();
      let onAbort: (() => void) | undefined;
      const done = (r: Omit<SendResult, 'durationMs'>) => {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
        resolve({ ...r, durationMs: Math.round(performance.now() - started) });
      };
      if (signal?.aborted) return done({ error: 'stopped before the request was sent', aborted: true });
      let url: URL;
      try {
        url = new URL(rawUrl);
      } catch {
        return done({ error: 'invalid URL' });
      }
      const literal = opts.literalProblem?.(url.hostname);
      if (literal) return done({ error: literal, forbidden: true });
      const isHttps = url.protocol === 'https:';
      const payload = Buffer.from(body, 'utf8');
      const req = (isHttps ? https : http).request(url, {
        method: 'POST',
        agent: isHttps ? httpsAgent : httpAgent,
        headers: { ...headers, 'content-length': String(payload.length) },
      });
      let finished = false;
      // The deadline waits one turn of the event loop (setImmediate runs after the poll phase): an
      // answer that reached the socket before the deadline but found the loop busy (timers run
      // before I/O) is read, not thrown away and sent again as a duplicate.
      const timer = setTimeout(
        () =>
          setImmediate(() => {
            if (finished) return;
            finished = true;
            req.destroy();
            done({ error: `timed out after ${opts.timeoutMs} ms`, timedOut: true });
          }),
        opts.timeoutMs,
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        const forbidden = err instanceof DestinationForbiddenError;
        done({ error: forbidden ? err.message : `${err.code ?? 'ERROR'}: ${err.message}`, forbidden });
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        const finish = () => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          const retryAfter = res.headers['retry-after'];
          done({
            statusCode: res.statusCode,
            retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
            // Postgres text cannot hold U+0000: a binary answer would otherwise fail the attempt's record.
            bodyExcerpt: kept > 0 ? Buffer.concat(chunks).toString('utf8').replaceAll('\u0000', '\uFFFD') : undefined,
            responseHeaders: capturedResponseHeaders(res.rawHeaders),
          });
        };
        res.on('data', (chunk: Buffer) => {
          if (kept < opts.captureBytes) {
            const part = chunk.subarray(0, opts.captureBytes - kept);
            chunks.push(part);
            kept += part.length;
          }
          if (kept >= opts.captureBytes && chunk.length > 0) {
            // Enough captured: don't download a huge body; the socket is not reused.
            finish();
            res.destroy();
          }
        });
        res.on('end', finish);
        res.on('error', finish);
        res.on('aborted', finish);
      });
      if (signal) {
        onAbort = () => {
          // 'finish': every byte was handed to the OS; from then on the request is in flight.
          if (finished || req.writableFinished) return;
          finished = true;
          clearTimeout(timer);
          req.destroy();
          done({ error: 'stopped before the request was sent', aborted: true });
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      req.end(payload);
    });

  return {
    send: traceSends(send),
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
