import { Worker } from '@temporalio/worker';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workerTracing } from '../../src/tracing';
import { historyFromJson } from './historyJson';

/**
 * Recorded workflow histories (test/workflows/histories, written by `npm run histories:record`)
 * and replaying them against a workflow bundle.
 */
export const HISTORIES_DIR = join(__dirname, '..', 'workflows', 'histories');

/** Every workflow type and path the service has; each must have a recording. */
export const EXPECTED_PATHS = [
  'batch-delivered',
  'batch-handover',
  'batch-cancelled',
  'retry-delivered',
  'undeliverable',
  'cancelled',
  'superseded',
  'gone-410',
  'resend',
  'resend-retried',
  'resend-gone',
  'purge',
  'drain-recovered',
  'drain-retry-now',
] as const;

interface Manifest {
  histories: Record<string, { workflowId: string; workflowType: string; what: string }>;
}

export interface RecordedHistory {
  file: string;
  workflowId: string;
  workflowType?: string;
  history: ReturnType<typeof historyFromJson>;
}

/**
 * Every history of the folder and of its archive/<date>-<commit>/ folders (recordings of earlier
 * builds kept while their executions may still run), with the workflow id each ran under (from
 * the folder's manifest; else the file name). `file` is relative to HISTORIES_DIR.
 */
export function loadHistories(dir = HISTORIES_DIR): RecordedHistory[] {
  const archive = join(dir, 'archive');
  const folders = [
    '',
    ...(existsSync(archive)
      ? readdirSync(archive)
          .sort()
          .map((d) => join('archive', d))
      : []),
  ];
  return folders.flatMap((folder) => {
    const manifestPath = join(dir, folder, 'manifest.json');
    const manifest: Manifest = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, 'utf8')) : { histories: {} };
    return readdirSync(join(dir, folder))
      .filter((f) => f.endsWith('.json') && f !== 'manifest.json')
      .sort()
      .map((f) => {
        const entry = manifest.histories[f.replace(/\.json$/, '')];
        const file = join(folder, f);
        return { file, workflowId: entry?.workflowId ?? file, workflowType: entry?.workflowType, history: historyFromJson(JSON.parse(readFileSync(join(dir, file), 'utf8'))) };
      });
  });
}

/** Replays every history against a workflow bundle; one line per history that failed, naming its file. */
export async function replayFailures(codePath: string, histories: RecordedHistory[], replayName = 'replay-test'): Promise<string[]> {
  const byWorkflowId = new Map(histories.map((h) => [h.workflowId, h.file]));
  const failures: string[] = [];
  let replayed = 0;
  const results = Worker.runReplayHistories(
    { workflowBundle: { codePath }, replayName, sinks: workerTracing().sinks },
    histories.map((h) => ({ workflowId: h.workflowId, history: h.history })),
  );
  for await (const r of results) {
    replayed++;
    if (r.error) failures.push(`${byWorkflowId.get(r.workflowId) ?? r.workflowId}: ${r.error.name}: ${r.error.message}`);
  }
  if (replayed !== histories.length) failures.push(`only ${replayed} of ${histories.length} histories were replayed`);
  return failures;
}
