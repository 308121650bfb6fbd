// @ts-check
// The rules of Temporal's TypeScript samples (temporalio/samples-typescript .shared/.eslintrc.js),
// in flat config: type-aware no-floating-promises everywhere, and the workflow sandbox's limits
// (no Node built-ins, no activity/worker-side modules) on workflow code. Formatting is Prettier's.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const ALLOWED_NODE_BUILTINS = new Set(['assert']);

/** Modules that only the worker or the API may load: workflow code imports them as types at most. */
const NOT_IN_WORKFLOWS = [
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/testing',
  '@electric-sql/pglite',
  'pg',
  'koa',
  '@koa/router',
  'pino',
  'prom-client',
  'rate-limiter-flexible',
];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tools/', '.data/', 'coverage/', 'test-results/', 'bench-results/', '.test-build/', '.scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // recommended for safety: forgetting to await an activity, a workflow API or a query is a bug
      '@typescript-eslint/no-floating-promises': 'error',
      // code style preference
      'object-shorthand': ['error', 'always'],
      // relaxed rules, for convenience
      '@typescript-eslint/no-unused-vars': ['warn', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: globals.node },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The settings page's scripts run in the browser, as ES modules (after the block above, which they override).
    files: ['src/api/ui/**/*.js'],
    languageOptions: { globals: globals.browser, sourceType: 'module' },
    // Its own top-level helpers (reportError, …) may share a name with a browser global.
    rules: { 'no-redeclare': ['error', { builtinGlobals: false }] },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox (and test fixtures that stand in for it).
    files: ['src/workflows/**/*.ts', 'test/workflows/fixtures/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...builtinModules
              .filter((m) => !ALLOWED_NODE_BUILTINS.has(m))
              .flatMap((m) => [m, `node:${m}`])
              .map((name) => ({ name, message: 'Node built-ins are not available in the workflow sandbox (and are not deterministic): use an activity.' })),
            ...NOT_IN_WORKFLOWS.map((name) => ({ name, message: 'worker/API-side module: workflows call activities for I/O (import types only).', allowTypeImports: true })),
          ],
          patterns: [
            {
              group: [
                '**/activities/*',
                '**/db/*',
                '**/http/*',
                '**/api/*',
                '**/services/*',
                '**/temporal/*',
                '**/bootstrap',
                '**/config',
                '**/logger',
                '**/metrics',
                '**/tracing',
                '**/worker',
                '**/main',
              ],
              message: 'workflows import activities (and other worker/API code) as types only: `import type`, then proxyActivities<typeof …>.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  prettier,
);
