import { bundleWorkflowCode, type BundleOptions, type Logger, type WorkerOptions } from '@temporalio/worker';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config';

/**
 * Where a worker's workflow code comes from. `npm run build` packs it once into
 * dist/workflow-bundle.js (the bundle beside the compiled code, found automatically when the
 * worker runs from dist/); from the TypeScript sources (`npm start`, tsx) the SDK bundles it
 * with webpack at every worker start instead. Both paths use these options: anything added to
 * the bundle (workflow interceptor modules, a payload converter) goes here once.
 */
/** Bundled with the workflows: the OpenTelemetry workflow interceptors (src/tracing.ts). */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/interceptors')];

export function workflowBundleOptions(): Pick<BundleOptions, 'workflowsPath' | 'workflowInterceptorModules'> {
  return { workflowsPath: require.resolve('../workflows'), workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES };
}

/** dist/workflow-bundle.js when this file is dist/temporal/workflowBundle.js; src/… (never built) under tsx. */
export const BUILT_WORKFLOW_BUNDLE = resolve(__dirname, '..', 'workflow-bundle.js');

export type WorkflowCode = Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;

/**
 * The worker's workflow option: WORKFLOW_BUNDLE (must exist) > the built bundle beside the
 * compiled code > bundling the sources at start.
 */
export function workflowCode(configured: string | undefined): WorkflowCode {
  const codePath = workflowBundlePath(configured);
  return codePath ? { workflowBundle: { codePath } } : { workflowsPath: workflowBundleOptions().workflowsPath };
}

/** The pre-built bundle a worker loads, or undefined when it bundles the sources at start. */
export function workflowBundlePath(configured: string | undefined): string | undefined {
  if (configured) {
    const codePath = resolve(configured);
    if (!existsSync(codePath))
      throw new ConfigError(`WORKFLOW_BUNDLE=${configured}: no such file (build it with \`npm run build\`, or unset WORKFLOW_BUNDLE to bundle the workflow code at start).`);
    return codePath;
  }
  return existsSync(BUILT_WORKFLOW_BUNDLE) ? BUILT_WORKFLOW_BUNDLE : undefined;
}

/** Bundles the workflow code (webpack) and writes it to `outFile`; returns its size in bytes. */
export async function writeWorkflowBundle(outFile: string, logger?: Logger): Promise<number> {
  const { code } = await bundleWorkflowCode({ ...workflowBundleOptions(), ...(logger ? { logger } : {}) });
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, code);
  return Buffer.byteLength(code);
}
