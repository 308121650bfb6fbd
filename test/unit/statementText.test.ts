import { statementText } from '../../src/db/statementText';

test('a statement text is built on first use only, and every call returns that very string (no new copy to flatten and hash per query)', () => {
  let builds = 0;
  const prefix = '/*generic*/';
  const text = statementText(() => {
    builds++;
    return `${prefix}select $1::int as v`;
  });
  expect(builds).toBe(0); // lazy: may use constants defined later in its module
  const first = text();
  const second = text();
  expect(first).toBe('/*generic*/select $1::int as v');
  expect(Object.is(first, second)).toBe(true);
  expect(builds).toBe(1);
});
