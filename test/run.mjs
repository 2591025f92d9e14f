#!/usr/bin/env node
// Runs the compiled uvu suites (dist/test/**/*.test.js) and ends with one plain line,
// "tests: N passed, M failed", that CI reads. Arguments narrow the run to folders below
// test/ (e.g. `node test/run.mjs client shared`). Nothing is skipped silently: a suite that
// cannot run fails. `--unit` keeps only the unit suites (*.unit.test.ts, beside the suites of the
// same source): they need no root, network namespace, qemu, root-owned file or native addon, so
// they run as an ordinary user (`npm run test:unit`); without it every suite runs, each once.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../dist/test/', import.meta.url));
const sources = fileURLToPath(new URL('./', import.meta.url));
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const only = args.filter((a) => a !== '--unit');

function find(dir) {
  let out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(find(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

let files = find(root);
// tsc -b leaves the output of a renamed or deleted suite behind: run only what has a source.
const stale = files.filter((f) => !existsSync(join(sources, relative(root, f).replace(/\.js$/, '.ts'))));
if (stale.length > 0) console.log(`not run: ${stale.map((f) => relative(root, f)).join(', ')} (compiled, but the source is gone)`);
files = files.filter((f) => !stale.includes(f));
if (unitOnly) files = files.filter((f) => f.endsWith('.unit.test.js'));
if (only.length > 0) {
  files = files.filter((f) => only.some((o) => relative(root, f).startsWith(o.replace(/\/$/, '') + '/')
    || relative(root, f) === o));
}
if (files.length === 0) {
  console.error(`no ${unitOnly ? 'unit ' : ''}test files found under ${root} ${only.join(' ')}`);
  process.exit(1);
}

let passed = 0;
let failed = 0;
const failures = [];
for (const file of files) {
  const name = relative(root, file);
  const started = Date.now();
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, maxBuffer: 64 << 20 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    failed += 1;
    failures.push(name);
    console.log(`✘ ${name}: did not finish (exit ${r.status ?? r.signal}) [${secs}s]\n${out}`);
    continue;
  }
  if (skipped > 0) {
    failed += skipped;
    failures.push(name);
    console.log(`✘ ${name}: ${skipped} skipped test(s) count as failures`);
  }
  passed += ok;
  failed += total - ok;
  if (total - ok > 0 || r.status !== 0) {
    if (total === ok) failed += 1;
    failures.push(name);
    console.log(`✘ ${name}: ${ok}/${total} [${secs}s]\n${out}`);
  } else {
    console.log(`✔ ${name}: ${ok} [${secs}s]`);
  }
}
if (failures.length > 0) console.log(`\nfailed: ${failures.join(', ')}`);
console.log(`\ntests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
