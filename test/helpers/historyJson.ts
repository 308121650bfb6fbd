/**
 * Workflow history ⇄ the JSON format of Temporal's tools (Web UI download, `temporal workflow
 * show --output json`), as `historyToJSON`/`historyFromJSON` of `@temporalio/common/lib/proto-utils`.
 *
 * Why not those: this install has three copies of protobufjs 8 (under @temporalio/common, /proto
 * and /worker; the top level holds protobufjs 7 for another package), and proto-utils pairs
 * common's `protojson` with a type from proto's root, so protobufjs' `instanceof Type` check
 * fails ("type must be a Type"). Here `protojson` is loaded from the protobufjs copy that built
 * @temporalio/proto's root. `Worker.runReplayHistories` accepts the History this returns as is
 * (its event ids are Longs, so it does not go through the broken historyFromJSON).
 */
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { dirname } from 'node:path';

type History = proto.temporal.api.history.v1.IHistory;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fromJson, toJson } = require(require.resolve('protobufjs/ext/protojson', { paths: [dirname(require.resolve('@temporalio/proto/package.json'))] })) as {
  fromJson(type: unknown, json: unknown, opts?: { ignoreUnknownFields?: boolean }): unknown;
  toJson(type: unknown, message: unknown): unknown;
};
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType('temporal.api.history.v1.History');

/** The history as pretty JSON (two-space indent, newline at the end). */
export function historyToJson(history: History): string {
  return `${JSON.stringify(toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)), null, 2)}\n`;
}

/** A history from its JSON form (the enum spellings of older tools are fixed up as the SDK does). */
export function historyFromJson(json: unknown): History {
  const h = json as { events?: Record<string, any>[] };
  if (!h || !Array.isArray(h.events)) throw new TypeError('not a history: expected an object with an array of events');
  return fromJson(historyType, { events: h.events.map(fixEvent) }, { ignoreUnknownFields: true }) as History;
}

function constantCase(s: string): string {
  return s.replace(/[^\b][A-Z]/g, (m) => `${m[0]}_${m[1]}`).toUpperCase();
}

function fixEnum(obj: Record<string, any>, attr: string, prefix: string): Record<string, string> | undefined {
  const v = obj[attr];
  return typeof v === 'string' ? { [attr]: v.startsWith(prefix) ? v : `${prefix}_${constantCase(v)}` } : undefined;
}

function fixEvent(e: Record<string, any>): Record<string, any> {
  const type = Object.keys(e).find((k) => k.endsWith('EventAttributes'));
  if (!type) throw new TypeError(`history event without attributes: ${JSON.stringify(e).slice(0, 200)}`);
  const a = e[type];
  return {
    ...e,
    ...fixEnum(e, 'eventType', 'EVENT_TYPE'),
    [type]: {
      ...a,
      ...(a.taskQueue && { taskQueue: { ...a.taskQueue, ...fixEnum(a.taskQueue, 'kind', 'TASK_QUEUE_KIND') } }),
      ...fixEnum(a, 'parentClosePolicy', 'PARENT_CLOSE_POLICY'),
      ...fixEnum(a, 'workflowIdReusePolicy', 'WORKFLOW_ID_REUSE_POLICY'),
      ...fixEnum(a, 'initiator', 'CONTINUE_AS_NEW_INITIATOR'),
      ...fixEnum(a, 'retryState', 'RETRY_STATE'),
    },
  };
}

/**
 * The history's JSON text with every payload's data decoded next to it (payloads are base64 in
 * the JSON, so a plain grep would not see a secret inside one): for secret scans.
 */
export function readableText(json: string): string {
  const decoded: string[] = [];
  JSON.parse(json, (key, value: unknown) => {
    if (key === 'data' && typeof value === 'string') decoded.push(Buffer.from(value, 'base64').toString('utf8'));
    return value;
  });
  return `${json}\n${decoded.join('\n')}`;
}
