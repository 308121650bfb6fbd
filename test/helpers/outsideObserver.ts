import { Worker } from 'node:worker_threads';

/** A request as the outside receiver saw it. */
export interface ObservedRequest {
  path: string;
  webhookId: string;
  /** When its headers had been read (epoch ms, sub-ms precision, the observer's clock). */
  headersAt: number;
}

// Plain JavaScript: the thread does not go through jest's transform.
const OBSERVER = `
const { parentPort } = require('node:worker_threads');
const http = require('node:http');
const now = () => performance.timeOrigin + performance.now();
const requests = [];
let delayMs = 0;
const server = http.createServer((req, res) => {
  const headersAt = now();
  req.resume();
  req.on('end', () => {
    requests.push({ path: req.url, webhookId: String(req.headers['webhook-id']), headersAt });
    const send = () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); };
    if (delayMs > 0) setTimeout(send, delayMs); else send();
  });
});
server.keepAliveTimeout = 1000;
const ops = {
  start: () => new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server.address().port))),
  delay: (m) => { delayMs = m.delayMs; },
  requests: () => requests,
  call: async (m) => {
    const res = await fetch(m.url, { method: m.method, headers: m.headers, body: m.body });
    const at = now();
    await res.arrayBuffer();
    return { status: res.status, at };
  },
  stop: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
};
parentPort.on('message', async (m) => {
  try { parentPort.postMessage({ id: m.id, value: await ops[m.op](m) }); }
  catch (err) { parentPort.postMessage({ id: m.id, error: String(err) }); }
});
`;

/**
 * A webhook receiver and an API client on a thread of their own: one event loop that nothing
 * else in the test process blocks, and one clock. It sees what an outside party would: when
 * each webhook request arrived and when each API answer arrived, so "did a request start after
 * the API answered" is measured from outside the process that sends (in-process, a busy event
 * loop reads requests late and makes requests started long before the answer look late).
 */
export class OutsideObserver {
  private readonly worker = new Worker(OBSERVER, { eval: true });
  private next = 0;
  private readonly pending = new Map<number, { resolve(v: any): void; reject(e: Error): void }>();
  url = '';

  constructor() {
    this.worker.on('message', (m: { id: number; value?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error));
      else p?.resolve(m.value);
    });
  }

  private op<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args });
    });
  }

  async start(): Promise<this> {
    this.url = `http://127.0.0.1:${await this.op<number>('start')}/webhooks`;
    return this;
  }

  /** Answer every webhook with 200 after this long. */
  replyAfter(delayMs: number): Promise<void> {
    return this.op('delay', { delayMs });
  }

  requests(): Promise<ObservedRequest[]> {
    return this.op('requests');
  }

  /** An API call from the observer; `at` is when its answer's status line and headers arrived. */
  call(baseUrl: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; at: number }> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return this.op('call', { url: baseUrl + path, method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  }

  async stop(): Promise<void> {
    await this.op('stop');
    await this.worker.terminate();
  }
}
