/**
 * OpenTelemetry traces: publish request → workflow start → workflow → (local) activity →
 * outbound webhook POST, one trace. Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; the exporter (OTLP over HTTP) and the sampler read
 * the standard OTEL_* variables themselves. The client and activity interceptors are always
 * installed (without a tracer provider their spans are no-ops); the workflow interceptors only
 * with tracing on (src/temporal/workflowBundle.ts: each workflow run would evaluate their modules
 * afresh). They add no commands, so turning tracing on or off replays as before.
 *
 * What is not traced: a receiver never gets a `traceparent` header (the trace ids of this service
 * are not the customer's business), and spans carry endpoint URLs as scheme and host only.
 */
import * as otel from '@opentelemetry/api';
import { envDetectorSync, Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NoopSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { ClientInterceptors } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { WorkerOptions } from '@temporalio/worker';
import type { Middleware } from 'koa';
import { redactUrl } from './domain/redact';
import type { WebhookSender } from './http/sendWebhook';

const TRACER = 'rr-webhooks';

let current: { processor: SpanProcessor; resource: Resource; provider?: NodeTracerProvider } | undefined;

/** Whether the standard OTEL_* variables ask for trace export. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/**
 * Starts tracing for this process, once, before any Temporal client or worker is created:
 * registers a global tracer provider (async-hooks context, W3C trace context) exporting over
 * OTLP, or to `exporter` (tests). Does nothing when tracing is not requested.
 */
export function startTracing(opts: { serviceName: string; exporter?: SpanExporter; env?: NodeJS.ProcessEnv }): { enabled: boolean; shutdown(): Promise<void> } {
  if (current?.provider) return { enabled: true, shutdown: () => current!.provider!.shutdown() };
  const resource = Resource.default()
    .merge(new Resource({ 'service.name': opts.serviceName }))
    .merge(envDetectorSync.detect());
  if (!opts.exporter && !tracingRequested(opts.env)) {
    current = { processor: new NoopSpanProcessor(), resource };
    return { enabled: false, shutdown: async () => undefined };
  }
  // Loaded only when tracing is on: the OTLP exporter and the Node provider hold ~2 MiB of heap.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const sdk = require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const processor = opts.exporter ? new SimpleSpanProcessor(opts.exporter) : new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new sdk.NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  current = { processor, resource, provider };
  return { enabled: true, shutdown: () => provider.shutdown() };
}

/** Whether this process exports traces (startTracing found an exporter). */
export function tracingEnabled(): boolean {
  return Boolean(current?.provider);
}

/** Interceptors for a Temporal Client: a workflow start carries the caller's trace in its headers. */
export function clientInterceptors(): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor()] };
}

/**
 * Worker options for tracing: activity interceptors (an activity span under its workflow's) and
 * the sink the workflow interceptors hand their spans to (not called during replay). The
 * workflow interceptors themselves are in the bundle (WORKFLOW_INTERCEPTOR_MODULES).
 */
export function workerTracing(): Pick<WorkerOptions, 'sinks'> & { activityInterceptors: NonNullable<NonNullable<WorkerOptions['interceptors']>['activity']> } {
  const { processor, resource } = current ?? { processor: new NoopSpanProcessor(), resource: Resource.default() };
  return {
    activityInterceptors: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })],
    sinks: { exporter: makeWorkflowExporter(processor, resource) },
  };
}

/**
 * One SERVER span per API request, named by its route (`POST /v1/events`); a `traceparent` from
 * the caller (the platform) becomes its parent. Outermost middleware, so the status is final.
 */
export function traceRequests(): Middleware {
  const tracer = otel.trace.getTracer(TRACER);
  return async (ctx, next) => {
    if (!tracingEnabled()) return next(); // no span to name, no context to carry: nothing to do per request
    const parent = otel.propagation.extract(otel.ROOT_CONTEXT, ctx.headers);
    await tracer.startActiveSpan(ctx.method, { kind: otel.SpanKind.SERVER, attributes: { 'http.request.method': ctx.method, 'url.path': ctx.path } }, parent, async (span) => {
      try {
        await next();
      } finally {
        const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
        if (typeof route === 'string') {
          span.updateName(`${ctx.method} ${route}`);
          span.setAttribute('http.route', route);
        }
        span.setAttribute('http.response.status_code', ctx.status);
        if (ctx.status >= 500) span.setStatus({ code: otel.SpanStatusCode.ERROR });
        span.end();
      }
    });
  };
}

/** Runs later code in the trace context active now (a batch that waited is traced under the request that queued it, not whichever runs when it starts). */
export function inCurrentTraceContext(): <T>(fn: () => T) => T {
  const ctx = otel.context.active();
  return (fn) => otel.context.with(ctx, fn);
}

/**
 * One INTERNAL span per first-attempt batch sent from the process (src/services/inlineFirstAttempts.ts),
 * where a batch workflow's run and activity spans would be: its POSTs are its children.
 */
export function traceInlineBatch<T>(owner: string, deliveries: number, fn: () => Promise<T>): Promise<T> {
  if (!tracingEnabled()) return fn();
  return otel.trace
    .getTracer(TRACER)
    .startActiveSpan('FirstAttemptBatch', { attributes: { 'rr.first_attempt.owner': owner, 'rr.first_attempt.deliveries': deliveries } }, async (span) => {
      try {
        return await fn();
      } catch (err) {
        span.setStatus({ code: otel.SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    });
}

/** One CLIENT span per outbound webhook POST, under the activity that sends it. */
export function traceSends(send: WebhookSender): WebhookSender {
  const tracer = otel.trace.getTracer(TRACER);
  return (url, headers, body, signal) => {
    if (!tracingEnabled()) return send(url, headers, body, signal); // no span: skip parsing and redacting the URL for its attributes
    let host: string | undefined;
    try {
      host = new URL(url).hostname;
    } catch {
      /* the sender reports it */
    }
    const attributes = { 'http.request.method': 'POST', 'url.full': redactUrl(url), ...(host ? { 'server.address': host } : {}), 'webhook.id': headers['webhook-id'] ?? '' };
    return tracer.startActiveSpan('POST webhook', { kind: otel.SpanKind.CLIENT, attributes }, async (span) => {
      try {
        const r = await send(url, headers, body, signal);
        if (r.statusCode !== undefined) span.setAttribute('http.response.status_code', r.statusCode);
        if (r.error) span.setAttribute('error.type', r.timedOut ? 'timeout' : r.forbidden ? 'refused' : 'network');
        if (r.error || (r.statusCode ?? 0) >= 400) span.setStatus({ code: otel.SpanStatusCode.ERROR, message: r.statusCode ? `HTTP ${r.statusCode}` : 'request failed' });
        return r;
      } finally {
        span.end();
      }
    });
  };
}
