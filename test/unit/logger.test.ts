import { createLogger } from '../../src/logger';

function capture(level: 'debug' | 'info' | 'warn' = 'info') {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(level, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  return { log, lines };
}

describe('child loggers', () => {
  it('carry their fields on every line, redacted like any field', () => {
    const { log, lines } = capture();
    const child = log.child!({ requestId: 'req-1', url: 'https://hooks.example.com/secret/path?token=abc', secret: 'whsec_abc' });
    child.info('one', { n: 1 });
    child.warn('two');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.requestId).toBe('req-1');
      expect(line.url).toBe('https://hooks.example.com/…');
      expect(line.secret).toBe('[redacted]');
    }
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'one', n: 1 });
  });

  it('are built only when a line is written at an enabled level', () => {
    const { log, lines } = capture('warn');
    let reads = 0;
    const fields = {
      get requestId() {
        reads++;
        return 'req-2';
      },
    };
    const child = log.child!(fields);
    child.debug('quiet');
    child.info('quiet too');
    expect(reads).toBe(0);
    expect(lines).toHaveLength(0);
    child.warn('heard');
    expect(reads).toBeGreaterThan(0);
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', msg: 'heard', requestId: 'req-2' })]);
  });

  it('of a child carry both sets of fields', () => {
    const { log, lines } = capture();
    log.child!({ requestId: 'req-3' }).child!({ deliveryId: 'd-1' }).info('nested');
    expect(lines).toEqual([expect.objectContaining({ msg: 'nested', requestId: 'req-3', deliveryId: 'd-1' })]);
  });
});
