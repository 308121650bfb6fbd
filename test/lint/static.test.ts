import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// The `lint` project: `npm test` type-checks and lints the whole code base (tsc --noEmit, ESLint
// with eslint.config.mjs), so a type or lint error fails the run like a failing test.
const root = join(__dirname, '..', '..');

function run(args: string[], stdin?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(stdin ?? '');
  });
}

const eslint = join(root, 'node_modules', 'eslint', 'bin', 'eslint.js');

test('when the code is type-checked (tsc --noEmit), then there is no error', async () => {
  const r = await run([join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', root]);
  expect(r).toEqual({ code: 0, output: '' });
}, 300_000);

test('when the code is linted (eslint .), then there is no error', async () => {
  const r = await run([eslint, '.']);
  expect({ code: r.code, errors: r.code === 0 ? '' : r.output }).toEqual({ code: 0, errors: '' }); // warnings are shown, not fatal
}, 300_000);

test('when workflow code imports a Node built-in or an activity module, or leaves a promise floating, then lint fails', async () => {
  const file = 'src/workflows/purgeOldData.ts';
  const bad =
    `import { readFileSync as _read } from 'node:fs';\nimport { createDeliveryActivities as _c } from '../activities/delivery';\n` +
    readFileSync(join(root, file), 'utf8') +
    `\nexport async function lintProbe(a: import('../activities/delivery').DeliveryActivities): Promise<void> {\n  a.recordOutcome({ deliveryId: 'x', series: 1, status: 'cancelled' });\n}\n`;
  const r = await run([eslint, '--format', 'json', '--stdin', '--stdin-filename', file], bad);
  expect(r.code).toBe(1);
  const [result] = JSON.parse(r.output) as { messages: { ruleId: string; line: number }[] }[];
  expect(result.messages.map((m) => m.ruleId).sort()).toEqual([
    '@typescript-eslint/no-floating-promises',
    '@typescript-eslint/no-restricted-imports',
    '@typescript-eslint/no-restricted-imports',
  ]);
}, 300_000);

test('when the code is checked with Prettier (.prettierrc), then every file is already formatted', async () => {
  const r = await run([join(root, 'node_modules', 'prettier', 'bin', 'prettier.cjs'), '--list-different', '**/*.{ts,js,mjs,cjs}']);
  expect({ code: r.code, unformatted: r.output.trim() }).toEqual({ code: 0, unformatted: '' }); // fix with `npm run format`
}, 300_000);
