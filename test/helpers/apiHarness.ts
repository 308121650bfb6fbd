import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/api/app';
import type { DestinationGuard } from '../../src/http/destinationGuard';
import { addDatabaseGauges, destinationGuard, temporalHealth, webhookSender } from '../../src/bootstrap';
import { deliveryMetrics, Registry } from '../../src/metrics';
import { loadConfig, type Config } from '../../src/config';
import type { Database } from '../../src/db/database';
import { createLogger, silentLogger, type Logger } from '../../src/logger';
import { SendStops } from '../../src/http/sendStops';
import { Dispatcher } from '../../src/services/dispatcher';
import { Reconciler } from '../../src/services/reconciler';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { createDeliveryWorker, deliveryActivities } from '../../src/temporal/worker';
import type { DeliveryActivityDeps } from '../../src/activities/deliveryDeps';
import { InlineFirstAttempts } from '../../src/services/inlineFirstAttempts';
import { AcceptedTaker } from '../../src/services/acceptedOutbox';
import { clientInterceptors } from '../../src/tracing';
import { freshDatabase } from './db';

export interface Harness {
  baseUrl: string;
  cfg: Config;
  db: Database;
  dbUrl?: string;
  adminToken: string;
  client: Client;
  dispatcher: Dispatcher;
  /** Starts what a crash left unstarted (the service runs it on a timer; tests call it). */
  reconciler: Reconciler;
  call(
    method: string,
    path: string,
    opts?: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/**
 * The API in-process on port 0 against the shared real Temporal dev server (a task queue of
 * its own) and a fresh real database, with a delivery worker running beside it.
 */
export async function startHarness(
  env: Record<string, string> = {},
  opts: { worker?: boolean; temporalAddress?: string; postgresServerUrl?: string; guard?: (cfg: Config) => DestinationGuard; log?: Logger } = {},
): Promise<Harness> {
  installTemporalRuntime({ level: 'ERROR' });
  const adminToken = `admin_${randomBytes(16).toString('hex')}`;
  const cfg = loadConfig({
    ADMIN_TOKEN: adminToken,
    TEMPORAL_TASK_QUEUE: `api-test-${randomBytes(6).toString('hex')}`,
    DESTINATION_ALLOW_CIDRS: '127.0.0.0/8,::1/128',
    RETRY_INITIAL_INTERVAL: '1s',
    RETRY_BACKOFF_COEFFICIENT: '2',
    RETRY_JITTER: '0',
    ATTEMPT_TIMEOUT: '5s',
    ...env,
  });
  const { db, url: dbUrl, drop } = await freshDatabase(opts.postgresServerUrl);
  const address = opts.temporalAddress ?? process.env.RR_TEST_TEMPORAL_ADDRESS!;
  const connection = await Connection.connect({ address, connectTimeout: '30s' }); // a loaded CI machine: the default 10 s was seen to run out
  const guard = opts.guard ? opts.guard(cfg) : destinationGuard(cfg);
  const sender = webhookSender(cfg, guard);

  const metrics = new Registry();
  addDatabaseGauges(metrics, db);
  // Like `npm start`: the worker in this process shares the API's stops.
  const sendStops = new SendStops();
  let worker: Worker | undefined;
  let workerRun: Promise<void> | undefined;
  // Like `npm start`: with a worker, the client shares its NativeConnection and starts are eager.
  const nativeConnection: NativeConnection | undefined = opts.worker !== false ? await NativeConnection.connect({ address }) : undefined;
  const client = new Client({ connection: nativeConnection ?? connection, namespace: cfg.TEMPORAL_NAMESPACE, interceptors: clientInterceptors() });
  let inline: InlineFirstAttempts | undefined;
  let taker: AcceptedTaker | undefined;
  const dispatcher = new Dispatcher(client, db, cfg, opts.log ?? silentLogger, {
    eagerStart: nativeConnection !== undefined,
    get inline() {
      return inline;
    },
  });
  if (nativeConnection) {
    const activityDeps: DeliveryActivityDeps = {
      db,
      send: sender.send,
      log: opts.log ?? silentLogger,
      metrics: deliveryMetrics(metrics),
      autoDisableAfterMs: cfg.AUTO_DISABLE_AFTER,
      soleProcess: db.kind === 'pglite', // as main.ts
      startRetryWorkflows: (r) => dispatcher.startRetryWorkflows(r),
      existingWorkflows: (ids: string[]) => dispatcher.existingWorkflows(ids),
      sendStops,
      wakeDrain: (r) => dispatcher.wakeDrain(r),
      operationalEmitted: () => dispatcher.kickOperational(),
    };
    worker = await createDeliveryWorker({
      connection: nativeConnection,
      cfg,
      workflowBundle: { code: readFileSync(process.env.RR_TEST_WORKFLOW_BUNDLE!, 'utf8') },
      activityDeps,
    });
    workerRun = worker.run();
    // Like `npm start`: first attempts sent from this process while it has room (DISPATCH_INLINE).
    if (cfg.DISPATCH_INLINE)
      inline = new InlineFirstAttempts(deliveryActivities(cfg, activityDeps), db, opts.log ?? silentLogger, undefined, (batch) => dispatcher.startBatchWorkflow(batch));
    // Like src/worker.ts on a real Postgres: what separate API processes announce (processEnv) is taken here.
    if (cfg.DISPATCH_OUTBOX && db.listen) {
      taker = new AcceptedTaker(db, dispatcher, opts.log ?? silentLogger, inline);
      await taker.start();
    }
  }

  const app = createApp({
    cfg,
    db,
    dispatcher,
    guard,
    metrics,
    temporalReady: temporalHealth(connection),
    log: opts.log ?? (process.env.DEBUG_TESTS ? createLogger('debug') : silentLogger),
    adminToken,
    sendStops: nativeConnection ? sendStops : undefined,
  });
  const server: Server = await new Promise((ok) => {
    const s = app.listen(0, '127.0.0.1', () => ok(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl,
    cfg,
    db,
    dbUrl,
    adminToken,
    client,
    dispatcher,
    reconciler: new Reconciler(dispatcher, db, opts.log ?? silentLogger),
    async call(method, path, o = {}) {
      const token = o.token === undefined ? adminToken : o.token;
      const headers: Record<string, string> = { ...o.headers };
      if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined = o.rawBody;
      if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['content-type'] = 'application/json';
      }
      const res = await fetch(baseUrl + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed as any, headers: res.headers };
    },
    async close() {
      server.closeIdleConnections();
      await new Promise((ok) => server.close(ok));
      await taker?.stop();
      await inline?.shutdown();
      if (worker) {
        worker.shutdown();
        // After shutdownForceTime the worker gives up on what ignored its cancellation: run() rejects.
        await workerRun?.catch((err: Error) => console.warn(`[harness] worker stopped forcibly: ${err.message}`));
      }
      sender.close();
      await nativeConnection?.close();
      await connection.close();
      await drop();
    },
  };
}

/** Creates a paid (or free) account through the API; returns its id and key. */
export async function newAccount(h: Harness, plan: 'free' | 'paid' = 'paid'): Promise<{ id: string; apiKey: string }> {
  const res = await h.call('POST', '/v1/accounts', { body: { name: `Account ${randomBytes(3).toString('hex')}`, plan } });
  if (res.status !== 201) throw new Error(`account creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, apiKey: res.body.apiKey };
}

export const participant = (n = 1) => ({
  participantId: n,
  email: `p${n}@example.com`,
  code: `code${n}`,
  campaignId: 'PMf8BDZ1zb',
  rewardCurrency: 'USD',
  createdOn: '2025-02-09T03:00:28.002+00:00',
});

/** A paid account with one endpoint for `referrer_added` pointing at `url`, made through the API. */
export async function paidAccountWithEndpoint(h: Harness, url: string): Promise<{ id: string; apiKey: string }> {
  const account = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url, eventTypes: ['referrer_added'] } });
  if (ep.status !== 201) throw new Error(`endpoint creation failed: ${ep.status} ${JSON.stringify(ep.body)}`);
  return account;
}

/** Id and status of every delivery of an account, oldest first. */
export function deliveryStatuses(h: Harness, accountId: string): Promise<{ id: string; status: string }[]> {
  return h.db.query('select id, status from deliveries where account_id = $1 order by id', [accountId]);
}

const killed = async () => {
  throw new Error('process killed');
};
/** A dispatcher that "dies" before it starts anything, like a process killed right after the commit: accepted, nothing started or sent. */
export const dyingDispatcher = { dispatchAll: killed, dispatchAccepted: killed } as unknown as Dispatcher;

/**
 * The environment of a service process (src/api-server.ts, src/main.ts) that shares this harness's
 * database, admin token, Temporal and task queue, and listens on `port`.
 */
export function processEnv(h: Harness, port: number): Record<string, string> {
  return {
    DATABASE_URL: h.dbUrl!,
    ADMIN_TOKEN: h.adminToken,
    TEMPORAL_ADDRESS: process.env.RR_TEST_TEMPORAL_ADDRESS!,
    TEMPORAL_TASK_QUEUE: h.cfg.TEMPORAL_TASK_QUEUE,
    DESTINATION_ALLOW_CIDRS: '127.0.0.0/8',
    PORT: String(port),
    LOG_LEVEL: 'warn',
  };
}
