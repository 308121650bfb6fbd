import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The workflow code bundled by webpack in a child process, for a worker started from the sources
 * (`npm run dev` or `npm run worker` under tsx, no `npm run build`). Bundled in the service process itself, webpack's
 * heap stayed with it for good (measured: +75 MiB of the embedded default's idle memory, README
 * Performance); the child takes it along when it exits. One bundle per process and tracing
 * choice, shared by its workers (the main and the bulk lane). Undefined when the child cannot run
 * (an unusual loader): the worker then bundles in-process, as before.
 */
const bundles = new Map<boolean, Promise<{ code: string } | undefined>>();

export function bundleInChild(tracing: boolean): Promise<{ code: string } | undefined> {
  let bundle = bundles.get(tracing);
  if (!bundle) {
    bundle = runChild(tracing).catch(() => undefined);
    bundles.set(tracing, bundle);
  }
  return bundle;
}

async function runChild(tracing: boolean): Promise<{ code: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rr-workflow-bundle-'));
  const out = join(dir, 'workflow-bundle.js');
  try {
    const child = spawn(process.execPath, [...loaderFlags(process.execArgv), require.resolve('./bundleWorkflowsMain'), out, tracing ? 'traced' : 'untraced'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: process.env,
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2_000)));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`bundling the workflow code failed (exit ${code}): ${stderr}`);
    return { code: readFileSync(out, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The parent's module-loader flags (tsx's `--import tsx`), and nothing else: not its profiling
 * flags (a bench's --cpu-prof), and never its `-e` script (the child would run it again).
 */
export function loaderFlags(execArgv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i];
    if (/^--(import|require|loader|experimental-loader)=/.test(a)) out.push(a);
    else if (/^(--import|--require|-r|--loader|--experimental-loader)$/.test(a) && i + 1 < execArgv.length) out.push(a, execArgv[++i]);
  }
  return out;
}
