import { trace } from '@opentelemetry/api';
import { asyncLocalStorage as activityContext } from '@temporalio/activity';
import { AsyncLocalStorage } from 'node:async_hooks';
import pino from 'pino';
import { redactUrl } from './domain/redact';

/** The first-attempt batch sent from the process (src/services/inlineFirstAttempts.ts) that a line is written in: the line names it (`inlineBatch`), as an activity's line names its workflow. */
export const inlineBatchContext = new AsyncLocalStorage<{ owner: string }>();

/**
 * One JSON object per line on stdout (pino): `{"level":"info","time":"…","msg":"…",…fields}`.
 * Fields are fixed per message so logs can be queried. Secrets never reach a line: fields named
 * like a credential are replaced, URL fields keep scheme and host only, and credential-shaped
 * strings (bearer tokens, `whsec_`/`rrk_`/`rrp_` values, URLs) inside any string field are
 * scrubbed. While a trace is recording, each line carries its `traceId` and `spanId`; inside a
 * Temporal activity, its `workflowId` and `activity` type (a line leads to its Web UI page).
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger whose every line also carries `fields` (a request id, a delivery or workflow id). */
  child?(fields: Record<string, unknown>): Logger;
}

/** Field names whose values are never logged, at any of the first three levels of nesting. */
const SECRET_FIELDS = [
  'authorization',
  'cookie',
  'set-cookie',
  'secret',
  'secrets',
  'previousSecret',
  'previous_secret',
  'token',
  'apiKey',
  'api_key',
  'adminToken',
  'password',
  'webhook-signature',
  'x-rr-signature',
  'signature',
];
/** Field names that hold endpoint URLs (often capability URLs): scheme and host only. */
const URL_FIELDS = ['url', 'endpointUrl'];

const at = (field: string) => (/^[A-Za-z_$][\w$]*$/.test(field) ? `.${field}` : `["${field}"]`);
const REDACT_PATHS = [...SECRET_FIELDS, ...URL_FIELDS].flatMap((f) => [at(f).replace(/^\./, ''), `*${at(f)}`, `*.*${at(f)}`]);

const CREDENTIALS: [RegExp, (m: string, ...g: string[]) => string][] = [
  [/\b(Bearer|Basic)\s+[^\s"',]+/gi, (_m, scheme) => `${scheme} [redacted]`],
  [/\b(whsec_|rrk_|rrp_)[A-Za-z0-9+/=_.-]+/g, (_m, prefix) => `${prefix}[redacted]`],
  [/\bhttps?:\/\/[^\s"'<>]+/gi, (m) => redactUrl(m)],
];
/** Credential-shaped parts of free text (error messages, stacks) replaced. */
export function scrub(text: string): string {
  return CREDENTIALS.reduce((t, [re, fn]) => t.replace(re, fn as (m: string) => string), text);
}

function scrubFields(obj: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(obj)) if (typeof v === 'string') obj[k] = scrub(v);
  return obj;
}

function wrap(p: pino.Logger): Logger {
  return {
    debug: (msg, fields) => p.debug(fields ?? {}, msg),
    info: (msg, fields) => p.info(fields ?? {}, msg),
    warn: (msg, fields) => p.warn(fields ?? {}, msg),
    error: (msg, fields) => p.error(fields ?? {}, msg),
    child: (fields) => lazyChild(p, fields),
  };
}

/**
 * A child made on its first line: pino builds (and redacts) a child's bindings when it is made, and
 * every API request gets one that at the default level never writes (9 % of what the service
 * allocated per delivery at 300/s, in a sampling allocation profile).
 */
function lazyChild(parent: pino.Logger, fields: Record<string, unknown>): Logger {
  let made: Logger | undefined;
  const at =
    (level: Level) =>
    (msg: string, f?: Record<string, unknown>): void => {
      if (parent.isLevelEnabled(level)) (made ??= wrap(parent.child(fields)))[level](msg, f);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more) => lazyChild(parent, { ...fields, ...more }) };
}

export function createLogger(level: Level = 'info', write?: (line: string) => void): Logger {
  const destination = write ? { write: (s: string) => write(s.endsWith('\n') ? s.slice(0, -1) : s) } : pino.destination({ fd: 1, sync: true });
  return wrap(
    pino(
      {
        level,
        base: undefined,
        messageKey: 'msg',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }), log: scrubFields },
        redact: { paths: REDACT_PATHS, censor: (value, path) => (URL_FIELDS.includes(path[path.length - 1]) && typeof value === 'string' ? redactUrl(value) : '[redacted]') },
        mixin() {
          const span = trace.getActiveSpan()?.spanContext();
          const activity = activityContext.getStore()?.info;
          const inline = activity ? undefined : inlineBatchContext.getStore();
          return {
            ...(span && span.traceFlags & 1 ? { traceId: span.traceId, spanId: span.spanId } : {}),
            ...(activity ? { workflowId: activity.workflowExecution?.workflowId, activity: activity.activityType } : {}),
            ...(inline ? { inlineBatch: inline.owner } : {}),
          };
        },
      },
      destination,
    ),
  );
}

/** `log` with `fields` on every line (loggers without `child`, such as test fakes, get a wrapper). */
export function childLogger(log: Logger, fields: Record<string, unknown>): Logger {
  if (log.child) return log.child(fields);
  const add = (f?: Record<string, unknown>) => ({ ...fields, ...f });
  return {
    debug: (m, f) => log.debug(m, add(f)),
    info: (m, f) => log.info(m, add(f)),
    warn: (m, f) => log.warn(m, add(f)),
    error: (m, f) => log.error(m, add(f)),
    child: (f) => childLogger(log, { ...fields, ...f }),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };
