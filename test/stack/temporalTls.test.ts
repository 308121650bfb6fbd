import { Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, spawnApp, type AppProcess } from '../helpers/appProcess';
import { freshDatabase } from '../helpers/db';
import { waitFor } from '../helpers/receiver';
import { freePorts, startTemporalCluster, temporalServerDir, type ClusterTls, type TemporalCluster } from '../helpers/temporalCluster';

/**
 * TEMPORAL_TLS_* against a real cluster: the official Temporal server (the release CI builds)
 * with a frontend that requires client certificates (mTLS), certificates made by openssl.
 * The dev server has no TLS options, so this is the one place the connection settings meet a
 * TLS handshake. (API keys need Temporal Cloud or a custom authorizer: their option building is
 * covered by test/unit/temporalConnection.test.ts only.)
 *
 * Needs scripts/provision-temporal-server.sh (run by .ci/run); skipped locally without it.
 */
const serverDir = temporalServerDir();
if (!serverDir && process.env.CI) throw new Error('CI must run the stack tests: scripts/provision-temporal-server.sh did not provision the Temporal server');
if (!serverDir) console.warn('[stack] Temporal server not provisioned (scripts/provision-temporal-server.sh): skipping the mTLS test');
const describeStack = serverDir ? describe : describe.skip;
const ADMIN_TOKEN = `tls-admin-${randomBytes(8).toString('hex')}`;

/** A CA, a server certificate for `temporal.test` (and 127.0.0.1), a client certificate: X.509 v3, as a real PKI issues them. */
function makeCertificates(dir: string): ClusterTls {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=rr test CA');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:temporal.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [
    ['server', 'temporal.test'],
    ['client', 'rr-worker'],
  ]) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
  const f = (n: string) => join(dir, n);
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), serverName: 'temporal.test', clientCert: f('client.pem'), clientKey: f('client.key') };
}

describeStack('Temporal connection over mTLS (official server, client certificates required)', () => {
  let dir: string;
  let tls: ClusterTls;
  let cluster: TemporalCluster | undefined;
  let app: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let receiver: Server | undefined;
  const received: string[] = [];
  const processes: AppProcess[] = [];
  let build: Awaited<ReturnType<typeof buildApp>> | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rr-tls-stack-'));
    tls = makeCertificates(dir);
    // The api and worker run compiled (`npm run build`), as in the image.
    [cluster, app, build] = await Promise.all([startTemporalCluster({ tls }), freshDatabase(process.env.TEST_DATABASE_URL), buildApp()]);
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(String(req.headers['webhook-id']));
        res.end('ok');
      });
    });
    await new Promise<void>((ok) => receiver!.listen(0, '127.0.0.1', ok));
  }, 300_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(3_000)));
    await new Promise((ok) => (receiver ? receiver.close(ok) : ok(undefined)));
    await app?.drop();
    await cluster?.stop();
    build?.remove();
    if (!process.env.KEEP_STACK_LOGS) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: app!.url!,
    TEMPORAL_ADDRESS: cluster!.address,
    TEMPORAL_NAMESPACE: cluster!.namespace,
    TEMPORAL_TASK_QUEUE: 'tls-deliveries',
    ADMIN_TOKEN,
    DESTINATION_ALLOW_CIDRS: '127.0.0.0/8',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ...extra,
  });
  const mtls = () => ({ TEMPORAL_TLS_CA: tls.ca, TEMPORAL_TLS_CERT: tls.clientCert, TEMPORAL_TLS_KEY: tls.clientKey, TEMPORAL_TLS_SERVER_NAME: tls.serverName });

  test("when a client presents no certificate, then the frontend refuses it; the helper's own mTLS connection works", async () => {
    await expect(
      Connection.connect({ address: cluster!.address, connectTimeout: 3_000, tls: { serverRootCACertificate: readFileSync(tls.ca), serverNameOverride: tls.serverName } }).then(
        (c) => c.healthService.check({}),
      ),
    ).rejects.toThrow();
    const ok = await Connection.connect({
      address: cluster!.address,
      tls: {
        serverRootCACertificate: readFileSync(tls.ca),
        serverNameOverride: tls.serverName,
        clientCertPair: { crt: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey) },
      },
    });
    expect((await ok.healthService.check({})).status).toBe(1); // SERVING
    await ok.close();
  });

  test('when the worker runs with TLS but without a client certificate, then it stops at start-up with the handshake error', async () => {
    const worker = spawnApp('worker-no-cert', 'src/worker.ts', env({ WORKER_METRICS_PORT: '0', TEMPORAL_TLS_CA: tls.ca, TEMPORAL_TLS_SERVER_NAME: tls.serverName }), dir, {
      distDir: build!.dir,
    });
    processes.push(worker);
    await worker.exited;
    expect(worker.child.exitCode).toBe(1);
    // TLS 1.3: the server refuses the missing certificate after the handshake; the client sees the
    // alert, or (when it was already writing or reading) the closed stream: all are the refusal.
    expect(readFileSync(worker.logFile, 'utf8')).toMatch(/CertificateRequired|certificate required|broken pipe|connection reset|connection closed/i);
  });

  test('when the compiled api and worker run with TEMPORAL_TLS_CA/CERT/KEY/SERVER_NAME, then they connect over mTLS and a published event is delivered', async () => {
    const [apiPort] = await freePorts(1);
    const api = spawnApp('api', 'src/api-server.ts', env({ ...mtls(), PORT: String(apiPort) }), dir, { distDir: build!.dir });
    const worker = spawnApp('worker', 'src/worker.ts', env({ ...mtls(), PORT: '0', WORKER_METRICS_PORT: '0' }), dir, { distDir: build!.dir });
    processes.push(api, worker);
    const [listening, running] = await Promise.all([api.waitForLog('api.listening'), worker.waitForLog('worker.running')]);
    expect(listening.temporal).toBe(`${cluster!.address} (tls, client certificate, private CA)`);
    expect(running.temporal).toBe(`${cluster!.address} (tls, client certificate, private CA)`);
    expect(running.workflowCode).toBe(join(build!.dir, 'workflow-bundle.js')); // the built bundle: no webpack at start

    const base = `http://127.0.0.1:${apiPort}`;
    const call = async (path: string, token: string, body?: unknown) => {
      const res = await fetch(base + path, {
        method: body ? 'POST' : 'GET',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = (await res.json()) as Record<string, unknown>;
      if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    expect(await call('/readyz', ADMIN_TOKEN)).toMatchObject({ temporal: true });
    const account = await call('/v1/accounts', ADMIN_TOKEN, { name: 'TLS', plan: 'paid' });
    const { port } = receiver!.address() as AddressInfo;
    await call('/v1/endpoints', account.apiKey as string, { url: `http://127.0.0.1:${port}/hooks`, eventTypes: ['referrer_added'] });
    const event = await call('/v1/events', ADMIN_TOKEN, {
      accountId: account.id,
      eventType: 'referrer_added',
      idempotencyKey: 'tls-1',
      data: { participantId: 1, email: 'ada@example.com', code: 'scG3q9Ez', campaignId: 'PMf8BDZ1zb' },
    });
    const [delivery] = event.deliveries as { id: string }[];
    await waitFor(() => received.includes(delivery.id) || undefined, 'the webhook to arrive through the mTLS-connected worker', 60_000, 100);
    await waitFor(
      async () => (await call(`/v1/deliveries/${delivery.id}`, account.apiKey as string)).status === 'delivered' || undefined,
      'the delivery to be recorded delivered',
      30_000,
      200,
    );
  });
});
