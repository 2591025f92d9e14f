// Not a test: measures createTapsMany (one request)/deleteTaps (warm, in-process medians) and the processes each
// request runs (with the long-lived ip and with one ip process per batch), in a namespace with a Linux bridge and an OVS bridge. Root.
//   node dist/test/helper/net/bench.js [rounds]
// For scale it also times the reference's `tap-control make-nics br0` (a whole bash run).
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createNetns } from '../../support/netns.js';
import { startOvs } from '../../support/ovs.js';
import { requireRoot, runJob, value } from './support.js';

interface Counts { programs: number; batches: number }
interface Bench { createMs: number; deleteMs: number; create: Counts; remove: Counts; rounds: number }

const counted = (c: Counts): string => `${c.programs} programs + ${c.batches} ip batches`;

requireRoot();
const rounds = Number(process.argv[2] ?? 20);
const ns = createNetns({ bridges: ['br0'] });
const ovs = startOvs(ns, { bridges: ['ovsbr0'] });
try {
  const owner = { uid: 7001, gid: 7001 };
  const cases: [string, string[]][] = [
    ['1 tap, Linux bridge', ['br0']],
    ['8 taps, Linux bridge', Array.from({ length: 8 }, () => 'br0')],
    ['1 tap, OVS bridge', ['ovsbr0']],
    ['8 taps, OVS bridge', Array.from({ length: 8 }, () => 'ovsbr0')],
    ['8 taps, 4 Linux + 4 OVS', ['br0', 'ovsbr0', 'br0', 'ovsbr0', 'br0', 'ovsbr0', 'br0', 'ovsbr0']],
  ];
  for (const [label, bridges] of cases) {
    for (const spawnBatches of [false, true]) {
      const b = value<Bench>(runJob(ns, { op: 'bench', bridges, owner, ovsdb: ovs.db, rounds, spawnBatches }));
      console.log(`${label.padEnd(26)} ${spawnBatches ? 'ip per batch' : 'long-lived ip'}  create ${b.createMs.toFixed(1).padStart(6)} ms (${counted(b.create)})`
        + `   delete ${b.deleteMs.toFixed(1).padStart(6)} ms (${counted(b.remove)})   median of ${b.rounds}`);
    }
  }
  const reference = new URL('../../../../../shared/reference/xkvm', import.meta.url).pathname;
  const times: number[] = [];
  for (let i = 0; i <= Math.min(rounds, 10); i += 1) {
    const t0 = performance.now();
    const r = spawnSync('/usr/sbin/ip', ['netns', 'exec', ns.name, '/usr/bin/env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'SUDO_USER=root',
      reference, 'tap-control', 'make-nics', 'br0'], { encoding: 'utf8' });
    const ms = performance.now() - t0;
    if (r.status !== 0) { console.log(`reference failed: ${r.stderr}`); break; }
    if (i > 0) times.push(ms);
  }
  times.sort((x, y) => x - y);
  if (times.length > 0) console.log(`${'reference make-nics, 1 tap'.padEnd(26)} ${times[Math.floor(times.length / 2)]?.toFixed(1)} ms (whole bash run, incl. ip netns exec)`);
} finally {
  ovs.stop();
  ns.destroy();
}
