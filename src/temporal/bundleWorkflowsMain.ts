/** Child process of bundleInChild.ts: `<out file> traced|untraced` → the workflow bundle written there. */
import { writeWorkflowBundle } from './workflowBundle';

const quiet = { trace() {}, debug() {}, info() {}, log() {}, warn: console.warn, error: console.error };
writeWorkflowBundle(process.argv[2], quiet, { tracing: process.argv[3] === 'traced' }).then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
  },
);
