import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { loadHistories, replayFailures } from '../helpers/replay';

/**
 * The replay test catches what it is there for: a copy of the workflow code with one more
 * command in `deliverWebhook` (its delivery written to the memo before anything else) fails on
 * every recorded deliverWebhook history; the same change behind `patched()` replays them all.
 */
const histories = loadHistories();
const dir = mkdtempSync(join(tmpdir(), 'rr-replay-changed-'));
const quiet = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };

async function bundle(fixture: string): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve(`./fixtures/${fixture}`), logger: quiet });
  const path = join(dir, `${fixture}.js`);
  writeFileSync(path, code);
  return path;
}

beforeAll(() => installTemporalRuntime({ level: 'ERROR' }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('when deliverWebhook gains a command without patched(), then the replay test fails on every deliverWebhook history with a determinism violation', async () => {
  const failures = await replayFailures(await bundle('deliveryMemoUnpatched'), histories, 'replay-unpatched');

  const deliverWebhookFiles = histories.filter((h) => h.workflowType === 'deliverWebhook').map((h) => h.file);
  expect(deliverWebhookFiles.length).toBeGreaterThanOrEqual(7);
  expect(failures.map((f) => f.split(':')[0]).sort()).toEqual(deliverWebhookFiles.sort());
  for (const f of failures) expect(f).toMatch(/DeterminismViolationError/);
  console.log(`unpatched change, as the replay test reports it:\n${failures.join('\n')}`);
});

test('when the same change is guarded by patched(), then every recorded history replays', async () => {
  expect(await replayFailures(await bundle('deliveryMemoPatched'), histories, 'replay-patched')).toEqual([]);
});
