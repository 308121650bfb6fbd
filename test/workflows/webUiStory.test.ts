import { getDelivery } from '../../src/db/deliveries';
import { workflowIdFor } from '../../src/domain/workflowIds';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { waitFor } from '../helpers/receiver';
import { timeSkippingSuite } from '../helpers/timeSkipping';

// What a retrying delivery's workflow page in the Temporal Web UI tells the operator: its current
// details (the workflow metadata query the Web UI reads) and static details.
const suite = timeSkippingSuite({ CIRCUIT_OPEN_AFTER: '100000' });
const MINUTE = 60_000;

async function currentDetails(workflowId: string): Promise<string | undefined> {
  const meta = await suite.env.client.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return meta.currentDetails;
}

/** Skips time a second at a time until the workflow's current details match. */
function detailsMatching(workflowId: string, pattern: RegExp): Promise<string> {
  return waitFor(
    async () => {
      const details = await currentDetails(workflowId).catch(() => undefined);
      if (details && pattern.test(details)) return details;
      await suite.env.sleep(1_000);
      return undefined;
    },
    `current details of ${workflowId} matching ${pattern}`,
    60_000,
    50,
  );
}

const STORY = /^attempt (\d+), next at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC, gives up at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC, last error (.+)$/;
const at = (utc: string) => Date.parse(`${utc.replace(' ', 'T')}:00Z`);

async function attemptCount(accountId: string, deliveryId: string): Promise<number | undefined> {
  return (await getDelivery(suite.db, accountId, deliveryId))?.attempt_count;
}

test("when a batch's first attempt fails and the retries fail twice more, then the retry workflow's static details tell the first failure and when it starts, and its current details count the attempts as the delivery log does, with the next one, the window's end and the last error", async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  suite.receiver.respond = (_req, n) => (n <= 3 ? { status: 503 } : { status: 200 });
  const workflowId = workflowIdFor(deliveryId, 1);
  const seen: string[] = [];

  const { retries } = await suite.deliverBatch(account.id, [deliveryId], async () => {
    const windowEndsAtMs = (await suite.env.currentTimeMs()) + suite.cfg.DELIVERY_WINDOW;
    // Handed over after attempt 1, the retry workflow waits out the first back-off before its first
    // task (a delayed start): meanwhile its static details tell the failure and when it starts.
    const handle = suite.env.client.workflow.getHandle(workflowId);
    const waiting = await waitFor(
      () =>
        handle.describe().then(
          (d) => d.staticDetails(),
          () => undefined,
        ),
      `${workflowId} to be started`,
      60_000,
      50,
    );
    const starts = /the server starts this workflow after the first back-off, at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC/.exec(waiting!);
    expect(waiting).toContain('The first attempt failed (HTTP 503)');
    const firstAttemptAt = (await getDelivery(suite.db, account.id, deliveryId))!.last_attempt_at!.getTime();
    expect(at(starts![1]) - firstAttemptAt).toBeGreaterThanOrEqual(10_000 - MINUTE);
    expect(at(starts![1]) - firstAttemptAt).toBeLessThanOrEqual(10_000 + MINUTE);
    for (const n of [2, 3]) {
      const details = await detailsMatching(workflowId, new RegExp(`^attempt ${n},`));
      seen.push(details);
      const [, attempt, next, givesUp, error] = STORY.exec(details) ?? [];
      // The batch's first attempt counts: the number is the delivery log's.
      expect({ attempt: Number(attempt), error }).toEqual({ attempt: await attemptCount(account.id, deliveryId), error: 'HTTP 503' });
      expect(Math.abs(at(givesUp) - windowEndsAtMs)).toBeLessThanOrEqual(MINUTE);
      const last = (await getDelivery(suite.db, account.id, deliveryId))!.last_attempt_at!.getTime();
      expect(at(next) - last).toBeGreaterThanOrEqual(10_000 * 3 ** (n - 1) - 2 * MINUTE); // minute precision
      expect(at(next) - last).toBeLessThanOrEqual(10_000 * 3 ** (n - 1) + MINUTE);
    }
    // The static details say who made the first attempt and when the window ends.
    const described = await suite.env.client.workflow.getHandle(workflowId).describe();
    const staticDetails = await described.staticDetails();
    expect(staticDetails).toContain(`Its first attempt was made by \`batch-${deliveryId}\``);
    expect(staticDetails).toContain(`retries it until ${STORY.exec(seen[0])![3]} UTC`);
    expect(await detailsMatching(workflowId, /^delivered/)).toBe('delivered at attempt 4');
  });

  expect(retries.get(deliveryId)?.status).toBe('delivered');
  expect(await attemptCount(account.id, deliveryId)).toBe(4);
});

test("when a delivery's own first attempt (a local activity) fails, then its current details show that attempt, and the outcome once it ends", async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  suite.receiver.respond = () => ({ status: 500 });
  const workflowId = workflowIdFor(deliveryId, 1);

  const result = await suite.deliver(deliveryId, async () => {
    const first = await detailsMatching(workflowId, /^attempt 1,/);
    expect(first).toMatch(STORY);
    expect(STORY.exec(first)![4]).toBe('HTTP 500');
    await detailsMatching(workflowId, /^attempt 2,/);
    suite.receiver.respond = () => ({ status: 410 });
    expect(await detailsMatching(workflowId, /^undeliverable/)).toMatch(/^undeliverable after attempt 3: /);
  });

  expect(result.status).toBe('undeliverable');
  expect(await attemptCount(account.id, deliveryId)).toBe(3);
});
