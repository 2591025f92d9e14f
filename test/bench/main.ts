/**
 * `npm run bench`: performance figures as ratios against baselines measured in the same run
 * (never absolute times, never in tests). Prints a table and writes bench-results.json.
 * Needs root (it makes a network namespace with the bridges the reference checks for).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createNetns } from '../support/netns.js';
import { REPO_ROOT } from '../support/reference.js';
import { benchMakeNics } from './make-nics.js';
import { benchRelay } from './relay.js';
import { benchHelperMemory } from './helper-memory.js';
import { benchTeardown } from './teardown.js';
import { timeCommands, type Timing } from './measure.js';

const rounds = Number(process.env['BENCH_ROUNDS'] ?? 15);
/** BENCH_ONLY=make-nics,relay (any of dry-run, make-nics, teardown, memory, relay) measures only those. */
const GROUPS = ['dry-run', 'make-nics', 'teardown', 'memory', 'relay'] as const;
const only = (process.env['BENCH_ONLY'] ?? '').split(',').filter((g) => g !== '');
for (const g of only) {
  if (!(GROUPS as readonly string[]).includes(g)) {
    console.error(`BENCH_ONLY: unknown group ${JSON.stringify(g)}; expected some of ${GROUPS.join(', ')}`);
    process.exit(2);
  }
}
const want = (group: typeof GROUPS[number]): boolean => only.length === 0 || only.includes(group);
const client = join(REPO_ROOT, 'dist', 'bin', 'xkvm.cjs');
const reference = join(REPO_ROOT, '..', 'shared', 'reference', 'xkvm');

const dir = mkdtempSync(join(tmpdir(), 'xkvm-bench-'));
for (let i = 0; i < 8; i++) {
  spawnSync('qemu-img', ['create', '-q', '-f', i % 2 ? 'raw' : 'qcow2', join(dir, `d${i}.img`), '16M']);
}
const bridges = Array.from({ length: 8 }, (_, i) => `br${i}`);
const ns = createNetns({ bridges });
const env = { ...process.env, HOME: dir, XDG_CACHE_HOME: join(dir, 'cache') };
process.env['XDG_CACHE_HOME'] = env.XDG_CACHE_HOME;

function inNs(argv: string[]): string[] {
  return ['/usr/sbin/ip', 'netns', 'exec', ns.name, ...argv];
}

const typical = ['--dry-run', '-n', 'br0', '-n', 'user', '-d', 'd0.img', '-d', 'd1.img'];
const big = ['--dry-run',
  ...bridges.flatMap((b, i) => ['-n', `${b},model=${i % 2 ? 'e1000' : 'virtio'},mac=:1${i},bootindex=${i + 1},vhost=on`]),
  ...Array.from({ length: 8 }, (_, i) => ['-d', `d${i}.img,cache=none,bootindex=${i + 10},discard_granularity=4096`]).flat()];

interface Row { figure: string; ours: Timing; baseline: Timing; ratio: number; goal: string; met: boolean; unit?: string }
const rows: Row[] = [];
try {
  if (want('dry-run')) {
  // Warm the caches (device probes, image formats) once.
  spawnSync(inNs([process.execPath, client, ...big])[0]!, inNs([process.execPath, client, ...big]).slice(1), { cwd: dir, env });
  const [node, oursTypical] = timeCommands([
    { label: 'node -e 1', argv: inNs([process.execPath, '-e', '1']), cwd: dir },
    { label: 'xkvm typical dry-run', argv: inNs([process.execPath, client, ...typical]), cwd: dir },
  ], rounds);
  rows.push({ figure: 'typical --dry-run (bridge, user, 2 disks), warm cache', ours: oursTypical!, baseline: node!, ratio: oursTypical!.median / node!.median, goal: '≤ 1.25× node -e 1', met: oursTypical!.median / node!.median <= 1.25 });
  const [ref, oursBig] = timeCommands([
    { label: 'reference big dry-run', argv: inNs(['/bin/bash', reference, ...big]), cwd: dir },
    { label: 'xkvm big dry-run', argv: inNs([process.execPath, client, ...big]), cwd: dir },
  ], Math.max(5, Math.floor(rounds / 2)));
  rows.push({ figure: 'big --dry-run (8 disks, 8 netdevs with options), warm cache', ours: oursBig!, baseline: ref!, ratio: oursBig!.median / ref!.median, goal: '≤ 0.5× reference', met: oursBig!.median / ref!.median <= 0.5 });
  }
  if (want('make-nics')) {
  const nics = await benchMakeNics(ns, reference, Math.max(40, rounds));
  const p99 = (t: Timing): number => [...t.runs].sort((a, b) => a - b)[Math.floor(0.99 * (t.runs.length - 1))]!;
  rows.push({ figure: 'make-nics round trip, warm socket helper, p50', ours: nics.single, baseline: nics.reference, ratio: nics.single.median / nics.reference.median, goal: 'p50 ≤ 0.08× reference', met: nics.single.median / nics.reference.median <= 0.08 });
  rows.push({ figure: 'make-nics round trip under mac-lock (Linux bridge), p50', ours: nics.locked, baseline: nics.single, ratio: nics.locked.median / nics.single.median, goal: 'p50 ≤ 3× without (+1 bridge(8) process)', met: nics.locked.median / nics.single.median <= 3 });
  rows.push({ figure: `make-nics, 16 concurrent sessions, p99 (${nics.errors} errors)`, ours: { ...nics.concurrent, median: p99(nics.concurrent) }, baseline: nics.single, ratio: p99(nics.concurrent) / nics.single.median, goal: 'p99 ≤ 5× single p50, no errors', met: nics.errors === 0 && p99(nics.concurrent) / nics.single.median <= 5 });
  console.log(`helper peak RSS (VmHWM) after ${nics.single.runs.length + nics.concurrent.runs.length} requests: ${nics.helperPeakRssMiB.toFixed(1)} MiB`);
  }
  if (want('teardown')) {
  const teardown = await benchTeardown(ns, Math.max(3, Math.floor(rounds / 3)), 2);
  rows.push({ figure: '320 session taps (16 clients × 20) closing together: last close → all gone', ours: teardown.ours, baseline: teardown.oneByOne, ratio: teardown.ours.median / teardown.oneByOne.median, goal: '≤ 1000 ms', met: teardown.ours.median <= 1000 });
  }
  if (want('memory')) {
  const memory = await benchHelperMemory(ns);
  const memRow = (label: string, value: number): Timing => ({ label, runs: [value], median: value, p10: value, p90: value });
  rows.push({ figure: `helper peak RSS (MiB) after 1000 requests; gone ${memory.idleSeconds} s after idle: ${memory.goneAfterIdle ? 'yes' : 'NO'}`, ours: memRow('VmHWM MiB', memory.peakRssMiB), baseline: memRow('goal MiB', 80), ratio: memory.peakRssMiB / 80, goal: '≤ 80 MiB; process gone', met: memory.peakRssMiB <= 80 && memory.goneAfterIdle, unit: 'MiB' });
  }
  if (want('relay')) {
  const relay = benchRelay(client, Math.max(3, Math.floor(rounds / 3)));
  rows.push({ figure: 'console relay, 64 MiB through the pty', ours: relay.ours, baseline: relay.script, ratio: relay.ours.median / relay.script.median, goal: '≤ 1.25× script(1)', met: relay.ours.median / relay.script.median <= 1.25 });
  }
} finally {
  ns.destroy();
}

const fmt = (t: Timing, unit = 'ms'): string => (t.runs.length === 1
  ? `${t.median.toFixed(1)} ${unit}`
  : `${t.median.toFixed(1)} ${unit} (p10 ${t.p10.toFixed(1)}, p90 ${t.p90.toFixed(1)}, n=${t.runs.length})`);
console.log('| figure | xkvm | baseline | ratio | goal | met |\n|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.figure} | ${fmt(r.ours, r.unit)} | ${r.baseline.label}: ${fmt(r.baseline, r.unit)} | ${r.ratio.toFixed(2)}× | ${r.goal} | ${r.met ? 'yes' : 'NO'} |`);
}
const out = join(REPO_ROOT, 'bench-results.json');
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), rounds, only: only.length === 0 ? 'all' : only, rows }, null, 2)}\n`);
console.log(`\nwritten: ${out}`);
rmSync(dir, { recursive: true, force: true });

