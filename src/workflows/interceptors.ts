// Workflow interceptors module (bundled with the workflows, not one of them): OpenTelemetry spans
// for a workflow run and the activities it schedules, parented to the span that started it and
// handed to the worker through the `exporter` sink. They add no commands to the history, so
// histories recorded without them replay (test/workflows/replay.test.ts checks it).
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { OpenTelemetryInboundInterceptor, OpenTelemetryInternalsInterceptor, OpenTelemetryOutboundInterceptor } from '@temporalio/interceptors-opentelemetry/lib/workflow';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new OpenTelemetryInboundInterceptor()],
  outbound: [new OpenTelemetryOutboundInterceptor()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
