import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config';
import { BUILT_WORKFLOW_BUNDLE, workflowCode } from '../../src/temporal/workflowBundle';

test('when running from the TypeScript sources with WORKFLOW_BUNDLE unset, then the worker bundles src/workflows at start', () => {
  expect(BUILT_WORKFLOW_BUNDLE).toMatch(/src\/workflow-bundle\.js$/); // never written: `npm run build` writes dist/
  expect(workflowCode(undefined)).toEqual({ workflowsPath: require.resolve('../../src/workflows') });
});

test('when WORKFLOW_BUNDLE names a file, then the worker loads it (no webpack); a missing file stops start-up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-bundle-'));
  try {
    const file = join(dir, 'workflow-bundle.js');
    writeFileSync(file, '/* bundle */');
    expect(workflowCode(file)).toEqual({ workflowBundle: { codePath: file } });
    expect(() => workflowCode(join(dir, 'missing.js'))).toThrow(ConfigError);
    expect(() => workflowCode(join(dir, 'missing.js'))).toThrow(/WORKFLOW_BUNDLE=.*missing\.js: no such file.*npm run build/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
