/**
 * Two projects run the database-backed suites once per storage back-end: embedded PGlite
 * and a real Postgres server (TEST_DATABASE_URL; started by test/globalSetup when the
 * Postgres binaries are installed, always in CI).
 */
const transform = { '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] };
const common = { testEnvironment: 'node', transform, setupFilesAfterEnv: ['<rootDir>/test/helpers/jestSetup.ts'] };

module.exports = {
  globalSetup: '<rootDir>/test/globalSetup.ts',
  globalTeardown: '<rootDir>/test/globalTeardown.ts',
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/summaryReporter.js'],
  testTimeout: 120_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    // tsc --noEmit and ESLint over the whole code base: a type or lint error fails `npm test`.
    { ...common, displayName: 'lint', testMatch: ['<rootDir>/test/lint/**/*.test.ts'] },
    { ...common, displayName: 'workflows', testMatch: ['<rootDir>/test/workflows/**/*.test.ts'] },
    {
      ...common,
      displayName: 'api:pglite',
      testMatch: ['<rootDir>/test/api/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.pg\\.test\\.ts$'],
      setupFiles: ['<rootDir>/test/helpers/usePglite.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e.test.ts'], setupFiles: ['<rootDir>/test/helpers/usePglite.ts'] },
    { ...common, displayName: 'api:postgres', testMatch: ['<rootDir>/test/api/**/*.test.ts'], setupFiles: ['<rootDir>/test/helpers/usePostgres.ts'] },
    { ...common, displayName: 'fuzz', testMatch: ['<rootDir>/test/fuzz/**/*.test.ts'], setupFiles: ['<rootDir>/test/helpers/usePglite.ts'] },
    { ...common, displayName: 'stack', testMatch: ['<rootDir>/test/stack/**/*.test.ts'], setupFiles: ['<rootDir>/test/helpers/usePostgres.ts'] },
  ],
};
