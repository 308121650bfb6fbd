import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createLogger } from '../../src/logger';
import { startTracing } from '../../src/tracing';
import { paidAccountWithEndpoint, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

// OpenTelemetry (issue 12): one publish is one connected trace, from the API request through the
// workflow start, the batch workflow and its first-attempt activity to the outbound POST. The
// spans go to an in-memory exporter instead of OTLP; everything else is the production wiring
// (client interceptors, worker interceptors and sink, the bundled workflow interceptors).
const exporter = new InMemorySpanExporter();
const tracing = startTracing({ serviceName: 'rr-webhooks-test', exporter });
const logLines: string[] = [];
let h: Harness;
/** First attempts sent from the process (DISPATCH_INLINE, `npm start`'s default) instead of a batch workflow. */
let hi: Harness;
let receiver: Receiver;
beforeAll(async () => {
  const log = createLogger('info', (l) => logLines.push(l));
  h = await startHarness({ DISPATCH_INLINE: 'false' }, { log });
  hi = await startHarness({}, { log });
  receiver = await new Receiver().start();
});
afterAll(async () => {
  await receiver?.stop();
  await Promise.all([h?.close(), hi?.close()]);
  await tracing.shutdown();
});

const parentOf = (s: ReadableSpan, all: ReadableSpan[]) => all.find((p) => p.spanContext().spanId === s.parentSpanId);

test('when an event is published to a batch workflow, then the API request, the workflow start, the workflow, the activity and the outbound POST are one trace, each span the child of the one before', async () => {
  const account = await paidAccountWithEndpoint(h, `${receiver.url}/hooks/capability-secret?token=abc123`);
  exporter.reset();
  const published = await h.call('POST', '/v1/events', {
    body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) },
    headers: { 'x-request-id': 'req-trace-1' },
  });
  expect(published.status).toBe(202);
  expect(published.headers.get('x-request-id')).toBe('req-trace-1');

  const trace = await waitFor(
    () => {
      const all = exporter.getFinishedSpans();
      const api = all.find((s) => s.name === 'POST /v1/events');
      if (!api) return undefined;
      const same = all.filter((s) => s.spanContext().traceId === api.spanContext().traceId);
      return same.some((s) => s.name === 'POST webhook') && same.some((s) => s.name.startsWith('RunWorkflow:')) ? { api, same } : undefined;
    },
    'the publish trace',
    30_000,
  );
  const { api, same } = trace;
  const post = same.find((s) => s.name === 'POST webhook')!;

  // POST webhook ← RunActivity ← StartActivity ← RunWorkflow ← StartWorkflow ← POST /v1/events
  const chain: string[] = [];
  for (let s: ReadableSpan | undefined = post; s; s = parentOf(s, same)) chain.unshift(s.name.replace(/:.*/, ''));
  expect(chain).toEqual(['POST /v1/events', 'StartWorkflow', 'RunWorkflow', 'StartActivity', 'RunActivity', 'POST webhook']);
  expect(api.parentSpanId).toBeUndefined();
  expect(same.find((s) => s.name.startsWith('RunWorkflow:'))!.name).toBe('RunWorkflow:deliverBatch');

  // The POST span: status, and the endpoint URL as scheme and host only.
  expect(post.attributes['http.response.status_code']).toBe(200);
  expect(JSON.stringify(same.map((s) => s.attributes))).not.toMatch(/capability-secret|abc123/);
  expect(receiver.requests).toHaveLength(1);
  expect(receiver.requests[0].headers.traceparent).toBeUndefined(); // the trace stays ours

  // Log lines written inside the trace carry its id: the attempt line and the access log line.
  const lines = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const attempted = lines.find((l) => l.msg === 'delivery.attempted' && l.accountId === account.id)!;
  expect(attempted.traceId).toBe(api.spanContext().traceId);
  expect(attempted).toMatchObject({ activity: 'postBatch', workflowId: same.find((s) => s.name === 'RunWorkflow:deliverBatch')!.attributes.workflowId });
  const access = lines.find((l) => l.msg === 'api.request' && l.requestId === 'req-trace-1')!;
  expect(access).toMatchObject({ method: 'POST', path: '/v1/events', route: '/v1/events', status: 202, principal: 'admin', traceId: api.spanContext().traceId });
});

test('when an event is published and its first attempt is sent from the process, then the API request, the batch and the outbound POST are one trace, and the attempt log line names the batch', async () => {
  const account = await paidAccountWithEndpoint(hi, `${receiver.url}/hooks/capability-secret?token=abc123`);
  exporter.reset();
  receiver.requests.length = 0;
  const published = await hi.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(2) } });
  expect(published.status).toBe(202);

  const { api, same } = await waitFor(
    () => {
      const all = exporter.getFinishedSpans();
      const api = all.find((s) => s.name === 'POST /v1/events');
      if (!api) return undefined;
      const same = all.filter((s) => s.spanContext().traceId === api.spanContext().traceId);
      return same.some((s) => s.name === 'POST webhook') && same.some((s) => s.name === 'FirstAttemptBatch') ? { api, same } : undefined;
    },
    'the publish trace',
    30_000,
  );
  const post = same.find((s) => s.name === 'POST webhook')!;
  const chain: string[] = [];
  for (let s: ReadableSpan | undefined = post; s; s = parentOf(s, same)) chain.unshift(s.name);
  expect(chain).toEqual(['POST /v1/events', 'FirstAttemptBatch', 'POST webhook']);
  const batch = same.find((s) => s.name === 'FirstAttemptBatch')!;
  expect(batch.attributes['rr.first_attempt.owner']).toMatch(/^inline-dlv_/);
  expect(JSON.stringify(same.map((s) => s.attributes))).not.toMatch(/capability-secret|abc123/);
  expect(receiver.requests).toHaveLength(1);

  const lines = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const attempted = lines.find((l) => l.msg === 'delivery.attempted' && l.accountId === account.id)!;
  expect(attempted).toMatchObject({ traceId: api.spanContext().traceId, inlineBatch: batch.attributes['rr.first_attempt.owner'] });
  expect(attempted.workflowId).toBeUndefined();
});

test('when the caller sends a traceparent, then the API request span continues its trace', async () => {
  exporter.reset();
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const res = await h.call('GET', '/v1/event-types', { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
  expect(res.status).toBe(200);
  const span = await waitFor(() => exporter.getFinishedSpans().find((s) => s.name === 'GET /v1/event-types'), 'the request span');
  expect(span.spanContext().traceId).toBe(traceId);
  expect(span.parentSpanId).toBe('00f067aa0ba902b7');
});
