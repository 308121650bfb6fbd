#!/usr/bin/env node
// Worker start time: from spawning the process to its `worker.running` log line (connected to
// Temporal, workflow code loaded, Worker created), N times in a row; prints each run and the
// min / median / max. The worker is stopped (SIGTERM) after each run.
//
//   node bench/worker-start.mjs [-n 10] -- node dist/worker.js
//   node bench/worker-start.mjs -n 10 -- node --import tsx src/worker.ts
//
// Needs what the worker needs in the environment: DATABASE_URL, TEMPORAL_ADDRESS (a running
// server), SECRET_ENCRYPTION_KEYS; set WORKER_METRICS_PORT=0.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const args = process.argv.slice(2);
const sep = args.indexOf('--');
if (sep < 0 || sep === args.length - 1) {
  console.error('usage: node bench/worker-start.mjs [-n RUNS] [--line TEXT] -- COMMAND [ARG ...]');
  process.exit(2);
}
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i < sep ? args[i + 1] : dflt;
};
const runs = Number(opt('-n', '10'));
const line = opt('--line', 'worker.running');
const [cmd, ...cmdArgs] = args.slice(sep + 1);

function once() {
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let ms;
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stderr.on('data', (d) => (out += d));
    createInterface({ input: child.stdout }).on('line', (l) => {
      out += l + '\n';
      if (ms === undefined && l.includes(line)) {
        ms = Number(process.hrtime.bigint() - t0) / 1e6;
        child.kill('SIGTERM');
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (ms === undefined) fail(new Error(`exited (code ${code}, signal ${signal}) before "${line}":\n${out.slice(-3000)}`));
      else done(ms);
    });
  });
}

const times = [];
for (let i = 0; i < runs; i++) {
  const ms = await once();
  times.push(ms);
  console.log(`run ${i + 1}: ${ms.toFixed(0)} ms`);
}
const sorted = [...times].sort((a, b) => a - b);
const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
console.log(`${[cmd, ...cmdArgs].join(' ')}: ${runs} runs, min ${sorted[0].toFixed(0)} ms, median ${median.toFixed(0)} ms, max ${sorted.at(-1).toFixed(0)} ms`);
