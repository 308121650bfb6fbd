import { operatorWorkflowId } from '../../src/api/mappers';

// The operator's Web UI link of a delivery (GET /v1/deliveries/:id workflowId/workflowUrl) names
// a workflow that exists, from the columns that record who owns the delivery and what was started.
const row = (r: { owner: string | null; series?: number; dispatched?: number; started?: string | null }) => ({
  workflow_id: r.owner,
  series: r.series ?? 1,
  dispatched_series: r.dispatched ?? 1,
  dispatched_workflow_id: r.started ?? null,
});

test.each([
  { what: 'published, its batch not started yet (batch window, Temporal unreachable)', delivery: row({ owner: null, dispatched: 0, started: null }), expected: undefined },
  { what: 'its batch started, but has not claimed it yet', delivery: row({ owner: null, started: 'batch-d1' }), expected: 'batch-d1' },
  { what: 'started directly (reconciler, resend), not claimed yet', delivery: row({ owner: null, series: 2, dispatched: 2, started: 'delivery-d1-2' }), expected: 'delivery-d1-2' },
  { what: 'claimed by its batch (delivered at once, or being sent)', delivery: row({ owner: 'batch-d1', started: 'batch-d1' }), expected: 'batch-d1' },
  { what: 'handed over by its batch, the retry workflow not started yet', delivery: row({ owner: 'delivery-d1', started: 'batch-d1' }), expected: 'batch-d1' },
  { what: 'retrying in its own workflow', delivery: row({ owner: 'delivery-d1', started: 'delivery-d1' }), expected: 'delivery-d1' },
  { what: "sent by its endpoint's recovery drain", delivery: row({ owner: 'drain-ep1', started: 'delivery-d1' }), expected: 'drain-ep1' },
  { what: 'resent: the new series not started yet', delivery: row({ owner: null, series: 2, dispatched: 1, started: 'batch-d1' }), expected: undefined },
  { what: 'being sent straight from the process (DISPATCH_INLINE)', delivery: row({ owner: 'inline-d1-1a2b3c4d', dispatched: 0, started: null }), expected: undefined },
  { what: 'delivered by its inline first attempt', delivery: row({ owner: 'inline-d1-1a2b3c4d', started: null }), expected: undefined },
  { what: 'handed over by its inline first attempt, the retry workflow started', delivery: row({ owner: 'delivery-d1', started: 'delivery-d1' }), expected: 'delivery-d1' },
  { what: 'recorded before the started workflow was (owner only)', delivery: row({ owner: 'delivery-d1', started: null }), expected: 'delivery-d1' },
])('when a delivery is $what, then its link opens $expected', ({ delivery, expected }) => {
  expect(operatorWorkflowId(delivery)).toBe(expected);
});
