import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devServerExecutable } from '../../src/temporal/binaries';
import { deliveryStatuses, paidAccountWithEndpoint, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { freePort } from '../helpers/processes';
import { Receiver, waitFor } from '../helpers/receiver';

// Fault injection: the file-backed Temporal dev server is SIGKILLed in the middle of a run and
// restarted on the same store; nothing accepted may be lost.
const exe = devServerExecutable();
const describeIfBinary = exe.type === 'existing-path' ? describe : describe.skip;
if (exe.type !== 'existing-path' && process.env.CI) throw new Error('CI needs the provisioned Temporal CLI (npm run provision)');

describeIfBinary('Temporal dev server restart', () => {
  let dir: string;
  let port: number;
  let server: ChildProcess | undefined;
  let h: Harness;
  let receiver: Receiver;
  let stopReconciler: (() => Promise<void>) | undefined;

  const startServer = () => {
    server = spawn(
      (exe as { path: string }).path,
      [
        'server',
        'start-dev',
        '--headless',
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--db-filename',
        join(dir, 'temporal.db'),
        '--log-level',
        'error',
        '--search-attribute',
        'RrAccountId=Keyword',
        '--search-attribute',
        'RrEndpointId=Keyword',
        '--search-attribute',
        'RrEventType=Keyword',
        '--search-attribute',
        'RrDeliveryStatus=Keyword',
      ],
      { stdio: 'ignore' },
    );
  };
  const ready = () => waitFor(async () => (await fetchHealth()) || undefined, 'the dev server', 60_000, 250);
  const fetchHealth = async () => {
    const { Connection } = await import('@temporalio/client');
    try {
      const c = await Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1_000 });
      const ok = (await c.healthService.check({})).status === 1;
      await c.close();
      return ok;
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rr-temporal-restart-'));
    port = await freePort();
    startServer();
    await ready();
    h = await startHarness({ DISPATCH_RECONCILE_INTERVAL: '1s' }, { temporalAddress: `127.0.0.1:${port}` });
    receiver = await new Receiver().start();
    stopReconciler = h.reconciler.start(1_000);
  });
  afterAll(async () => {
    await stopReconciler?.();
    await receiver?.stop();
    await h?.close().catch(() => undefined);
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('when the Temporal server is killed mid-run and restarted, then every accepted event is still delivered', async () => {
    const account = await paidAccountWithEndpoint(h, receiver.url);
    const accepted: string[] = [];
    const publish = async (i: number) => {
      const res = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(i) } });
      expect(res.status).toBe(202); // acceptance lives in the database: it works even while Temporal is down
      accepted.push(res.body.deliveries[0].id);
    };
    for (let i = 0; i < 60; i++) await publish(i);
    server!.kill('SIGKILL');
    await new Promise((r) => server!.once('exit', r));
    // While the server is down: accepted all the same (each start gives up after its 5 s deadline).
    await Promise.all(Array.from({ length: 20 }, (_, k) => publish(60 + k)));
    startServer();
    await ready();

    await waitFor(
      async () => {
        const rows = await deliveryStatuses(h, account.id);
        return rows.length === 80 && rows.every((r) => r.status === 'delivered') ? true : undefined;
      },
      'every delivery to be delivered after the restart',
      120_000,
      250,
    );
    const ids = new Set(receiver.requests.map((r) => r.headers['webhook-id']));
    expect(ids).toEqual(new Set(accepted));
    const duplicates = receiver.requests.length - ids.size;
    console.log(`[temporal restart] ${accepted.length} deliveries, ${duplicates} duplicate requests`);
    expect(duplicates).toBeLessThanOrEqual(5); // at-least-once around the kill; receivers dedupe on webhook-id
  }, 240_000);
});
