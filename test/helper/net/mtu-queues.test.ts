// Each tap gets its bridge's MTU (Linux bridge and OVS userspace bridge), and a tap asked for with
// more than one queue is made multi_queue; for real, in fresh network namespaces (root).
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { MadeNic } from '../../../helper/src/net/index.js';
import { createNetns, sweepStaleNetns, TOOLS, type Netns } from '../../support/netns.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { requireRoot, runJob, spawnJob, tapsLike, value, withNetns } from './support.js';

const OWNER = { uid: 4301, gid: 4301 };
/** IFF_MULTI_QUEUE in tun_flags (include/uapi/linux/if_tun.h). */
const IFF_MULTI_QUEUE = 0x0100;

/** A device's MTU as `ip -j link show` gives it. */
function mtu(ns: Netns, dev: string): number {
  const [link] = JSON.parse(ns.ip('-j', 'link', 'show', 'dev', dev)) as { mtu: number }[];
  if (link === undefined) throw new Error(`no device ${dev}`);
  return link.mtu;
}

function tunFlags(ns: Netns, tap: string): number {
  const r = ns.exec(['/usr/bin/cat', `/sys/class/net/${tap}/tun_flags`]);
  if (r.status !== 0) throw new Error(`cannot read tun_flags of ${tap}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

test.before(() => {
  requireRoot();
  sweepStaleNetns();
});

test('a tap on a Linux bridge with MTU 9000 gets MTU 9000, and the nic says so', withNetns(['br0'], (ns) => {
  ns.ip('link', 'set', 'dev', 'br0', 'mtu', '9000');
  const [nic] = value<MadeNic[]>(runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER }));
  assert.is(nic?.mtu, 9000);
  assert.is(mtu(ns, nic?.tap ?? ''), 9000);
  assert.is(mtu(ns, 'br0'), 9000);
}));

test('a bridge whose MTU follows its ports (9000) is not pulled down to 1500 by a new tap, not even for a moment', async () => {
  requireRoot();
  const ns = createNetns({ bridges: ['br0'] });
  try {
    // No MTU set on the bridge itself: it takes its smallest port's.
    ns.ip('link', 'add', 'big0', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'big1', 'mtu', '9000');
    ns.ip('link', 'set', 'dev', 'big0', 'master', 'br0', 'up');
    ns.ip('link', 'add', 'mk0', 'type', 'veth', 'peer', 'name', 'mkpeer');
    assert.is(mtu(ns, 'br0'), 9000);
    // Every change of br0 while the tap is made (a tap attached at 1500 and raised afterwards
    // would show br0 at 1500 in between). Markers (renaming a spare veth) say when the monitor listens.
    const monitor = ns.spawn([TOOLS.ip, '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let seen = '';
    monitor.stdout?.on('data', (d: Buffer) => { seen += d.toString('latin1'); });
    try {
      let marks = 0;
      let marker = 'mk0';
      // Renamed until the monitor reports the new name (it may not be listening yet).
      const mark = async (): Promise<void> => {
        const from = seen.length;
        let renamed = false;
        await waitFor(() => {
          if (renamed && seen.slice(from).includes(` ${marker}@`)) return true;
          renamed = true;
          const next = `mk${(marks += 1)}`;
          ns.ip('link', 'set', 'dev', marker, 'name', next);
          marker = next;
          return false;
        }, PATIENCE_MS, { what: 'ip monitor to report a marker' });
      };
      await mark();
      const start = seen.length;
      const [nic] = value<MadeNic[]>(await spawnJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER }));
      await mark();
      const changes = seen.slice(start).split('\n').filter((l) => / br0: /.test(l)).map((l) => /mtu (\d+)/.exec(l)?.[1]);
      assert.equal(changes.filter((m) => m !== '9000'), [], `br0 changed MTU meanwhile: ${JSON.stringify(changes)}`);
      assert.is(nic?.mtu, 9000);
      assert.is(mtu(ns, nic?.tap ?? ''), 9000);
      assert.is(mtu(ns, 'br0'), 9000, 'the bridge keeps MTU 9000');
    } finally {
      monitor.kill();
    }
  } finally {
    ns.destroy();
  }
});

test('on a default bridge (1500) the tap stays at 1500, and two bridges give each tap its own MTU', withNetns(['br0', 'br1'], (ns) => {
  ns.ip('link', 'set', 'dev', 'br1', 'mtu', '4000');
  const nics = value<MadeNic[]>(runJob(ns, { op: 'create', bridges: ['br0', 'br1'], owner: OWNER }));
  assert.equal(nics.map((n) => [n.bridge, n.mtu, mtu(ns, n.tap)]), [['br0', 1500, 1500], ['br1', 4000, 4000]]);
  assert.is(mtu(ns, 'br0'), 1500);
}));

test('a tap on an OVS userspace bridge with MTU 9000 gets MTU 9000, and its Interface asks for it', () => {
  requireRoot();
  const ns = createNetns({ bridges: [] });
  let ovs: Ovs | undefined;
  try {
    ovs = startOvs(ns, { bridges: ['ovsbr0', 'ovsbr1'] });
    ovs.vsctl('set', 'Interface', 'ovsbr0', 'mtu_request=9000');
    assert.is(mtu(ns, 'ovsbr0'), 9000);
    const nics = value<MadeNic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr0', 'ovsbr1'], owner: OWNER, ovsdb: ovs.db }));
    assert.equal(nics.map((n) => [n.bridge, n.type, n.mtu, mtu(ns, n.tap)]), [['ovsbr0', 'ovs', 9000, 9000], ['ovsbr1', 'ovs', 1500, 1500]]);
    assert.is(ovs.vsctl('get', 'Interface', nics[0]?.tap ?? '', 'mtu_request').trim(), '9000');
    assert.is(mtu(ns, 'ovsbr0'), 9000);
  } finally {
    ovs?.stop();
    ns.destroy();
  }
});

test('queues 4 makes a multi_queue tap, queues 1 or none a plain one', withNetns(['br0'], (ns) => {
  const nics = value<MadeNic[]>(runJob(ns, { op: 'create', bridges: ['br0', 'br0', 'br0'], owner: OWNER, queues: [4, 1, 16] }));
  assert.equal(nics.map((n) => (tunFlags(ns, n.tap) & IFF_MULTI_QUEUE) !== 0), [true, false, true]);
  const [plain] = value<MadeNic[]>(runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER }));
  assert.is(tunFlags(ns, plain?.tap ?? '') & IFF_MULTI_QUEUE, 0);
}));

test('queues outside 1..16, or not one a bridge, are BAD_REQUEST and no tap is made', withNetns(['br0'], (ns) => {
  for (const queues of [[17], [0], [2.5], ['4'], [2, 2]]) {
    const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER, queues });
    assert.is(out.ok, false, JSON.stringify(queues));
    if (!out.ok) {
      assert.is(out.error.code, 'BAD_REQUEST');
      assert.match(out.error.message, /queues/);
    }
    assert.is(out.calls.length, 0, 'nothing ran');
  }
  assert.equal(tapsLike(ns, 'xkvm'), []);
}));

test.run();
