// The helper's long-lived ip (helper/src/net/ipcoprocess.ts), for real, in a network namespace
// (root): batches share one process, a failure is reported within its own batch and ends that
// process, a dead or hung ip is replaced, and an idle ip never keeps the helper alive.
import { fileURLToPath } from 'node:url';
import { test } from '../../support/suite.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';
import * as assert from 'uvu/assert';
import { createNetns, sweepStaleNetns, TOOLS, type Netns } from '../../support/netns.js';
import type { Scenario, ScenarioResult } from './coprocess-worker.js';
import { devices, requireRoot } from './support.js';

const WORKER = fileURLToPath(new URL('./coprocess-worker.js', import.meta.url));
let ns: Netns;

function scenario(s: Scenario): ScenarioResult {
  const r = ns.exec([process.execPath, WORKER, JSON.stringify(s)], { timeoutMs: 20_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ScenarioResult;
  } catch {
    throw new Error(`worker gave no result (exit ${String(r.status)}): ${r.stdout}\n${r.stderr}`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test.before(() => {
  requireRoot();
  sweepStaleNetns();
  ns = createNetns({ bridges: ['br0'] });
});
test.after(() => ns.destroy());

test('several batches run in one ip process, and each one\'s work is done when it resolves', () => {
  const out = scenario({
    batches: [
      ['tuntap add dev cpa1 mode tap user 4001', 'link set dev cpa1 up'],
      ['link set dev cpa1 master br0'],
      ['tuntap add dev cpa2 mode tap user 4001', 'link set dev cpa2 up', 'link set dev cpa2 master br0'],
    ],
  });
  assert.equal(out.results.map((r) => r.ok), [true, true, true]);
  assert.is(out.starts, 1);
  assert.is(new Set(out.results.map((r) => r.pid)).size, 1, 'the same ip answered every batch');
  const devs = devices(ns);
  assert.is(devs.get('cpa1')?.master, 'br0');
  assert.is(devs.get('cpa2')?.master, 'br0');
  assert.ok(devs.get('cpa2')?.up);
});

test('a failure is numbered within its own batch, stops the batch there, and the next batch gets a new ip', () => {
  const out = scenario({
    batches: [
      ['tuntap add dev cpb1 mode tap', 'link set dev cpb1 up'],
      ['link set dev cpb1 down', 'link set dev cpb-none up', 'tuntap add dev cpb2 mode tap'],
      ['tuntap add dev cpb3 mode tap'],
    ],
  });
  const [first, failed, after] = out.results;
  assert.is(first?.ok, true);
  assert.is(failed?.ok, false);
  assert.equal(failed?.failedLines, [2]);
  assert.match(failed?.stderr ?? '', /cpb-none/);
  assert.is(after?.ok, true);
  assert.is(out.starts, 2);
  assert.is.not(after?.pid, first?.pid);
  const devs = devices(ns);
  assert.is(devs.get('cpb1')?.up, false, 'the line before the failure ran');
  assert.not.ok(devs.has('cpb2'), 'nothing after the failing line ran');
  assert.ok(devs.has('cpb3'));
});

test('an empty batch writes nothing, so failures after it are still numbered right', () => {
  const out = scenario({ batches: [[], ['tuntap add dev cpj1 mode tap'], [], ['link set dev cpj1 up', 'link set dev cpj-none up']] });
  assert.equal(out.results.map((r) => r.ok), [true, true, true, false]);
  assert.equal(out.results[3]?.failedLines, [2]);
  assert.is(out.starts, 1);
});

test('a name that exists already fails its own line with "Device or resource busy", as a one-off ip would', () => {
  ns.ip('tuntap', 'add', 'dev', 'cpc-taken', 'mode', 'tap', 'user', '4242');
  const out = scenario({ batches: [['tuntap add dev cpc1 mode tap'], ['tuntap add dev cpc2 mode tap', 'tuntap add dev cpc-taken mode tap user 1']] });
  assert.equal(out.results[1]?.failedLines, [2]);
  assert.match(out.results[1]?.stderr ?? '', /Device or resource busy/);
  assert.ok(devices(ns).has('cpc2'));
});

test('with -force\'s outcome every line after a failing one still runs, and each failure is reported by its line', () => {
  for (const t of ['cpi1', 'cpi2', 'cpi3']) ns.ip('tuntap', 'add', 'dev', t, 'mode', 'tap');
  const out = scenario({
    forced: true,
    batches: [['link del dev cpi1', 'link del dev cpi-none', 'link del dev cpi2', 'link del dev cpi-none2', 'link del dev cpi3']],
  });
  const [r] = out.results;
  assert.is(r?.ok, false);
  assert.equal(r?.failedLines, [2, 4]);
  assert.match(r?.stderr ?? '', /cpi-none2/);
  assert.is(out.starts, 3, 'one ip, and a new one after each failure');
  const devs = devices(ns);
  for (const t of ['cpi1', 'cpi2', 'cpi3']) assert.not.ok(devs.has(t), `${t} deleted`);
});

test('a batch naming a bridge by another ifindex than the running ip resolved runs in a new ip, which attaches to the device of that name now', () => {
  ns.ip('link', 'add', 'cpbr', 'type', 'bridge');
  const index = (name: string): number => Number(ns.exec(['/usr/bin/cat', `/sys/class/net/${name}/ifindex`]).stdout.trim());
  const old = index('cpbr');
  const replace = [[TOOLS.ip, 'link', 'set', 'cpbr', 'name', 'cpbrold'], [TOOLS.ip, 'link', 'add', 'cpbr', 'type', 'bridge']];
  const out = scenario({
    batches: [
      ['tuntap add dev cpk1 mode tap', 'link set dev cpk1 master cpbr'],
      ['tuntap add dev cpk2 mode tap', 'link set dev cpk2 master cpbr'],
      ['tuntap add dev cpk3 mode tap', 'link set dev cpk3 master cpbr'],
      ['tuntap add dev cpk4 mode tap', 'link set dev cpk4 master cpbr'],
    ],
    before: { 1: replace },
    options: { 0: { devices: { cpbr: 'now' } }, 1: { devices: { cpbr: 'now' } }, 2: { devices: { cpbr: 'now' } }, 3: { fresh: true } },
  });
  assert.equal(out.results.map((r) => r.ok), [true, true, true, true]);
  assert.is.not(index('cpbr'), old);
  const devs = devices(ns);
  assert.is(devs.get('cpk1')?.master, 'cpbrold');
  assert.is(devs.get('cpk2')?.master, 'cpbr', 'the ip that knew cpbr as the old device was not used');
  assert.is(devs.get('cpk3')?.master, 'cpbr');
  const [p0, p1, p2, p3] = out.results.map((r) => r.pid);
  assert.is.not(p1, p0, 'a new ip for the batch that named another index');
  assert.is(p2, p1, 'the same ip while the index it resolved stays');
  assert.is.not(p3, p2, 'a new ip for a fresh batch');
  assert.is(out.starts, 3);
});

test('an ip killed while idle is replaced by the next batch', () => {
  const out = scenario({ batches: [['tuntap add dev cpd1 mode tap'], ['tuntap add dev cpd2 mode tap']], between: { 0: 'kill' } });
  assert.equal(out.results.map((r) => r.ok), [true, true]);
  assert.is(out.starts, 2);
  assert.ok(devices(ns).has('cpd2'));
});

test('an ip that hangs fails the batch after the time limit, is killed, and the next batch works', () => {
  const out = scenario({
    batches: [['tuntap add dev cpe1 mode tap'], ['tuntap add dev cpe2 mode tap'], ['tuntap add dev cpe3 mode tap']],
    between: { 0: 'stop' }, timeoutMs: 500,
  });
  const [, hung, after] = out.results;
  assert.is(hung?.error?.code, 'SYSTEM_ERROR');
  assert.match(hung?.error?.message ?? '', /did not finish within 500 ms/);
  assert.is(after?.ok, true);
  assert.ok(devices(ns).has('cpe3'));
  assert.ok(out.results[0]?.pid !== undefined && !alive(out.results[0].pid), 'the hung ip was killed');
});

test('a command that would print, or any other than tuntap add, link set and link del, is refused before ip starts', () => {
  const out = scenario({ batches: [['link show dev lo'], ['tuntap add dev cpf1 mode tap', 'addr flush dev br0'], ['route add default dev br0']] });
  for (const r of out.results) {
    assert.is(r.error?.code, 'SYSTEM_ERROR');
    assert.match(r.error?.message ?? '', /takes only tuntap add, link set and link del/);
  }
  assert.is(out.starts, 0);
  assert.not.ok(devices(ns).has('cpf1'));
});

test('an ip that cannot be started is a SYSTEM_ERROR naming it', () => {
  const out = scenario({ batches: [['tuntap add dev cpg1 mode tap']], file: '/nonexistent/ip' });
  assert.is(out.results[0]?.error?.code, 'SYSTEM_ERROR');
  assert.match(out.results[0]?.error?.message ?? '', /could not run \/nonexistent\/ip/);
});

test('the ip runs with exactly the fixed environment in /, and an idle one lets the helper exit and then ends', async () => {
  const out = scenario({ batches: [['tuntap add dev cph1 mode tap']] });
  assert.ok(out.idle, 'an ip was still running when the worker finished');
  assert.equal(out.idle?.environ.sort(), ['LC_ALL=C', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.is(out.idle?.cwd, '/');
  // scenario() returned, so the worker exited with that ip idle; the ip reads EOF and exits too.
  const idle = out.idle;
  if (idle !== undefined) await waitFor(() => !alive(idle.pid), PATIENCE_MS, { what: 'the ip to end with the worker' });
});

test.run();
