import { bundleWorkflowCode, type BundleOptions, type Logger, type WorkerOptions } from '@temporalio/worker';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config';

/**
 * Where a worker's workflow code comes from. `npm run build` packs it once into
 * dist/workflow-bundle.js (the bundle beside the compiled code, found automatically when the
 * worker runs from dist/); from the TypeScript sources (`npm run dev`, `npm run worker`: tsx) the SDK bundles it
 * with webpack at every worker start instead. Both paths use these options: anything added to
 * the bundle (workflow interceptor modules, a payload converter) goes here once.
 */
/**
 * Bundled with the workflows when tracing is on: the OpenTelemetry workflow interceptors
 * (src/tracing.ts). Only then: every workflow run evaluates its bundle's modules afresh, and
 * these bring ~100 OpenTelemetry modules with them (README, Performance: 0.2–0.6 ms of CPU per
 * delivery). They add no commands, so a deploy that turns tracing on or off replays as before.
 */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/interceptors')];

export function workflowBundleOptions(opts: { tracing: boolean } = { tracing: true }): Pick<BundleOptions, 'workflowsPath' | 'workflowInterceptorModules'> {
  return { workflowsPath: require.resolve('../workflows'), workflowInterceptorModules: opts.tracing ? WORKFLOW_INTERCEPTOR_MODULES : [] };
}

/** dist/workflow-bundle.js when this file is dist/temporal/workflowBundle.js; src/… (never built) under tsx. */
export const BUILT_WORKFLOW_BUNDLE = resolve(__dirname, '..', 'workflow-bundle.js');
/** The same with the tracing interceptors, loaded instead when tracing is on. */
export const BUILT_TRACED_WORKFLOW_BUNDLE = resolve(__dirname, '..', 'workflow-bundle-traced.js');

export type WorkflowCode = Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;

/**
 * The worker's workflow option: WORKFLOW_BUNDLE (must exist) > the built bundle beside the
 * compiled code (the traced one when tracing is on) > bundling the sources at start.
 */
export function workflowCode(configured: string | undefined, tracing = false): WorkflowCode {
  const codePath = workflowBundlePath(configured, tracing);
  return codePath ? { workflowBundle: { codePath } } : { workflowsPath: workflowBundleOptions({ tracing }).workflowsPath };
}

/** The pre-built bundle a worker loads, or undefined when it bundles the sources at start. */
export function workflowBundlePath(configured: string | undefined, tracing = false): string | undefined {
  if (configured) {
    const codePath = resolve(configured);
    if (!existsSync(codePath))
      throw new ConfigError(`WORKFLOW_BUNDLE=${configured}: no such file (build it with \`npm run build\`, or unset WORKFLOW_BUNDLE to bundle the workflow code at start).`);
    return codePath;
  }
  const built = tracing ? BUILT_TRACED_WORKFLOW_BUNDLE : BUILT_WORKFLOW_BUNDLE;
  return existsSync(built) ? built : undefined;
}

/** Bundles the workflow code (webpack; with the tracing interceptors unless told otherwise) and writes it to `outFile`; returns its size in bytes. */
export async function writeWorkflowBundle(outFile: string, logger?: Logger, opts: { tracing: boolean } = { tracing: true }): Promise<number> {
  const { code } = await bundleWorkflowCode({ ...workflowBundleOptions(opts), ...(logger ? { logger } : {}) });
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, code);
  return Buffer.byteLength(code);
}
