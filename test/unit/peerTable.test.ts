import { detailTable, median, parseWorkloads, ratioTable, summarize, type LoadgenResult } from '../../bench/peerTable';

const result = (deliveriesPerS: number, p99: number, cpu: number | null, extra: Partial<LoadgenResult> = {}): LoadgenResult => ({
  system: 'x',
  complete: true,
  deliveries: 3000,
  expected: 3000,
  duplicates: 0,
  missing: 0,
  publishFailed: 0,
  deliveriesPerS,
  latencyMs: { p50: p99 / 2, p95: p99 * 0.9, p99 },
  publishMs: { p50: 10, p99: 40 },
  cpu: { serverCpuSPer1kDeliveries: cpu, otherCpuS: 0.2 },
  ...extra,
});

test('when the peer workloads are given as <events>x<endpoints>, then they parse as full-speed workloads and a bad one is named', () => {
  expect(parseWorkloads('3000x1, 1000x5,300×20')).toEqual([
    { events: 3000, fanout: 1, rate: 0 },
    { events: 1000, fanout: 5, rate: 0 },
    { events: 300, fanout: 20, rate: 0 },
  ]);
  expect(() => parseWorkloads('3000')).toThrow('"3000" is not <events>x<endpoints>');
});

test('when runs are summarised, then each figure is the median, the range spans the runs and losses add up', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  const s = summarize([result(500, 200, 2.4), result(520, 230, 2.5, { missing: 1 }), result(460, 210, null)]);
  expect(s).toMatchObject({ runs: 3, deliveriesPerS: 500, deliveriesPerSRange: [460, 520], cpuPer1k: 2.45, missing: 1, duplicates: 0 });
  expect(s.latencyMs.p99).toBe(210);
});

test('when both systems were measured, then the ratio table gives this service ÷ Svix; a missing side reads "not measured"', () => {
  const rr = summarize([result(522, 226.7, 2.4)]);
  const svix = summarize([result(958, 76.4, 1.64)]);
  const table = ratioTable([
    { workload: { events: 3000, fanout: 1, rate: 0 }, rr, svix },
    { workload: { events: 9000, fanout: 1, rate: 300 }, rr },
  ]);
  const lines = table.split('\n');
  expect(lines[0]).toBe('| workload | this service (embedded) | Svix | ratio (this service ÷ Svix) |');
  expect(lines[2]).toBe(
    '| 3,000 events × 1 endpoint, as fast as possible | 522 deliveries/s, p50 113 ms, **p99 227 ms**, publish p99 40.0 ms, 2.40 CPU s per 1,000 | 958 deliveries/s, p50 38.2 ms, **p99 76.4 ms**, publish p99 40.0 ms, 1.64 CPU s per 1,000 | **0.54× throughput**; p50 2.97×, p99 2.97×; publish p99 1.00×; CPU per delivery 1.46× |',
  );
  expect(lines[3]).toBe('| sustained 300 events/s × 1 endpoint, 30 s | 522/s, p50 113 ms, **p99 227 ms**, publish p99 40.0 ms, 2.40 CPU s per 1,000 | not measured | — |');
  expect(detailTable([{ workload: { events: 3000, fanout: 1, rate: 0 }, rr, svix }]).split('\n')).toHaveLength(4);
});
