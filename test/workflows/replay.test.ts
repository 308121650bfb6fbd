import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeWorkflowBundle } from '../../src/temporal/workflowBundle';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { readableText } from '../helpers/historyJson';
import { EXPECTED_PATHS, HISTORIES_DIR, loadHistories, replayFailures } from '../helpers/replay';

/**
 * Deploy safety: today's workflow code must replay every recorded history (see README,
 * "Changing workflow code"). The histories are real ones, exported from the service by
 * `npm run histories:record`; a history from production can be dropped into the folder too
 * (the JSON of the Web UI's download or `temporal workflow show --output json`).
 */
const quietLogger = { trace() {}, debug() {}, info() {}, log() {}, warn() {}, error: console.error };

describe('recorded workflow histories', () => {
  const histories = loadHistories();
  beforeAll(() => installTemporalRuntime({ level: 'ERROR' }));

  test('when the recordings are listed, then every workflow type and path has one', () => {
    const files = histories.map((h) => h.file.replace(/\.json$/, ''));
    expect(EXPECTED_PATHS.filter((p) => !files.includes(p))).toEqual([]);
    expect(new Set(histories.map((h) => h.workflowType))).toEqual(new Set(['deliverBatch', 'deliverWebhook', 'drainEndpoint', 'purgeOldData']));
  });

  test("when today's workflow code replays every recorded history, then none is non-deterministic", async () => {
    const failures = await replayFailures(process.env.RR_TEST_WORKFLOW_BUNDLE!, histories);
    expect(failures).toEqual([]);
  });

  test('when the workflow code is bundled without the tracing interceptors (tracing off, the default), then every recorded history replays too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rr-untraced-'));
    try {
      const codePath = join(dir, 'workflow-bundle.js');
      await writeWorkflowBundle(codePath, quietLogger, { tracing: false });
      expect(readFileSync(codePath, 'utf8')).not.toMatch(/\.\/node_modules\/@(temporalio\/interceptors-)?opentelemetry/);
      expect(await replayFailures(codePath, histories)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("when a hand-over asked for a delayed start but a worker of the previous build ran the execution first (its history has the back-off timer), then today's code replays it on the timer path", async () => {
    // A recorded retry-delivered history of the timer path (recorded before delayed starts, now in
    // the archive), its input as today's dispatcher writes it.
    const recorded = histories.find((h) => h.file.endsWith('retry-delivered.json') && h.history.events!.some((e) => e.timerStartedEventAttributes))!;
    expect(recorded).toBeDefined();
    const history = structuredClone(recorded.history);
    const started = history.events![0].workflowExecutionStartedEventAttributes!;
    const payload = started.input!.payloads![0];
    const input = JSON.parse(Buffer.from(payload.data!).toString('utf8'));
    expect(input.after).toBeDefined();
    payload.data = Buffer.from(JSON.stringify({ ...input, after: { ...input.after, delayedStart: true } }));
    expect(history.events!.some((e) => e.timerStartedEventAttributes)).toBe(true);
    expect(await replayFailures(process.env.RR_TEST_WORKFLOW_BUNDLE!, [{ ...recorded, file: 'retry-delivered (delayedStart input)', history }])).toEqual([]);
  });

  test('when the recordings are read with their payloads decoded, then they hold no signing secret or API key', () => {
    for (const { file } of histories) {
      const text = readableText(readFileSync(join(HISTORIES_DIR, file), 'utf8'));
      expect({ file, secret: /whsec_|rrk_/.test(text) }).toEqual({ file, secret: false });
    }
  });
});
