import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  'purge',
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

/** Every history file of the folder, with the workflow id it ran under (from the manifest; else the file name). */
export function loadHistories(dir = HISTORIES_DIR): RecordedHistory[] {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'manifest.json')
    .sort()
    .map((file) => {
      const entry = manifest.histories[file.replace(/\.json$/, '')];
      return { file, workflowId: entry?.workflowId ?? file, workflowType: entry?.workflowType, history: historyFromJson(JSON.parse(readFileSync(join(dir, file), 'utf8'))) };
    });
}

/** Replays every history against a workflow bundle; one line per history that failed, naming its file. */
export async function replayFailures(codePath: string, histories: RecordedHistory[], replayName = 'replay-test'): Promise<string[]> {
  const byWorkflowId = new Map(histories.map((h) => [h.workflowId, h.file]));
  const failures: string[] = [];
  let replayed = 0;
  const results = Worker.runReplayHistories(
    { workflowBundle: { codePath }, replayName },
    histories.map((h) => ({ workflowId: h.workflowId, history: h.history })),
  );
  for await (const r of results) {
    replayed++;
    if (r.error) failures.push(`${byWorkflowId.get(r.workflowId) ?? r.workflowId}: ${r.error.name}: ${r.error.message}`);
  }
  if (replayed !== histories.length) failures.push(`only ${replayed} of ${histories.length} histories were replayed`);
  return failures;
}

