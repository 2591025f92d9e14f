// mac-lock in the network layer, for real in fresh network namespaces (root): what the lock costs
// (one bridge(8) for the Linux taps of a batch, nothing for taps not locked), and a lock that
// cannot be made fails its request with nothing left (the tap deleted, no flow left), never a
// tap handed out unlocked. Frames through locked taps: test/helper/server/mac-lock.test.ts.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { MadeNic } from '../../../helper/src/net/index.js';
import { sweepStaleNetns, TOOLS, type Netns } from '../../support/netns.js';
import type { Ovs } from '../../support/ovs.js';
import { requireRoot, runJob, value, withNetns, withOvs } from './support.js';

const OWNER = { uid: 4302, gid: 4302 };
const MAC = '52:54:00:4c:00:01';
const BRIDGE_TOOL = '/usr/sbin/bridge';

function portLocked(ns: Netns, tap: string): boolean | undefined {
  const [port] = JSON.parse(ns.exec([BRIDGE_TOOL, '-json', '-details', 'link', 'show', 'dev', tap]).stdout) as { locked?: boolean }[];
  return port?.locked;
}

const exists = (ns: Netns, dev: string): boolean => ns.exec([TOOLS.ip, 'link', 'show', 'dev', dev]).status === 0;

test.before(() => {
  requireRoot();
  sweepStaleNetns();
});

test('the mac-locked taps of a request on Linux bridges are locked by one bridge run; taps without a MAC run no bridge at all', withNetns(['br0', 'br1'], (ns) => {
  const out = runJob(ns, { op: 'create', bridges: ['br0', 'br1', 'br0'], owner: OWNER, macs: [MAC, undefined, '52:54:00:4c:00:02'] });
  const nics = value<MadeNic[]>(out);
  assert.equal(nics.map((n) => portLocked(ns, n.tap)), [true, false, true]);
  assert.is(out.calls.filter((c) => c.file.endsWith('/bridge')).length, 1, 'one bridge(8) run');
  const plain = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER });
  value<MadeNic[]>(plain);
  assert.equal(plain.calls.map((c) => c.file).filter((f) => !f.endsWith('/ip')), [], 'nothing but the ip batch ran');
}));

/** An interposed command that fails unless `tap` is down (IFF_UP clear in its flags). */
const isDown = (tap: string): string[] => ['/usr/bin/python3', '-c', 'import sys; sys.exit(int(open(sys.argv[1]).read(), 16) & 1)', `/sys/class/net/${tap}/flags`];
const isUp = (ns: Netns, tap: string): boolean => (Number(ns.exec(['/usr/bin/cat', `/sys/class/net/${tap}/flags`]).stdout.trim()) & 1) === 1;

test('a mac-locked tap is attached down and brought up only after it was locked: no frame gets into the bridge before', withNetns(['br0'], (ns) => {
  const out = runJob(ns, {
    op: 'create', bridges: ['br0'], owner: OWNER, macs: [MAC], names: ['xkvmmlockfd'],
    interpose: { before: 'lock', commands: [isDown('xkvmmlockfd')] },
  });
  const [nic] = value<MadeNic[]>(out);
  assert.is(nic?.tap, 'xkvmmlockfd');
  assert.ok(isUp(ns, 'xkvmmlockfd'), 'up once locked');
  assert.is(portLocked(ns, 'xkvmmlockfd'), true);
}));

test('a MAC the bridge already forwards to another port is BAD_REQUEST: the entry stays where it was and the tap is deleted', withNetns(['br0'], (ns) => {
  ns.ip('link', 'add', 've0', 'type', 'veth', 'peer', 'name', 've1');
  ns.ip('link', 'set', 'dev', 've0', 'master', 'br0', 'up');
  ns.exec([BRIDGE_TOOL, 'fdb', 'add', MAC, 'dev', 've0', 'master', 'static']);
  const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER, macs: [MAC], names: ['xkvmmlockfg'] });
  assert.is(out.ok, false);
  if (!out.ok) {
    assert.is(out.error.code, 'BAD_REQUEST');
    assert.match(out.error.message, /52:54:00:4c:00:01 is in use on br0 already \(on ve0\)/);
  }
  assert.not.ok(exists(ns, 'xkvmmlockfg'), 'the tap is gone');
  const holders = (JSON.parse(ns.exec([BRIDGE_TOOL, '-json', 'fdb', 'show', 'br', 'br0']).stdout) as { mac: string; ifname: string }[])
    .filter((e) => e.mac === MAC).map((e) => e.ifname);
  assert.equal(holders, ['ve0'], 'the MAC is still forwarded to ve0');
}));

test('a MAC that is not a lower-case unicast MAC, or not one a bridge, is BAD_REQUEST before anything runs', withNetns(['br0'], (ns) => {
  for (const macs of [['01:00:5e:00:00:01'], ['52:54:00:4C:00:01'], ['52:54:00:4c:00:01 x'], [MAC, MAC], ['00:00:00:00:00:00']]) {
    const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER, macs });
    assert.is(out.ok, false, JSON.stringify(macs));
    if (!out.ok) assert.is(out.error.code, 'BAD_REQUEST', JSON.stringify(macs));
    assert.is(out.calls.length, 0, 'nothing ran');
  }
}));

test('a Linux bridge port that could not be locked fails the request and its taps are deleted, the unlocked one too', withNetns(['br0', 'br1'], (ns) => {
  // The first tap is taken off its bridge just before bridge(8) runs: it cannot be locked.
  const out = runJob(ns, {
    op: 'create', bridges: ['br0', 'br1'], owner: OWNER, macs: [MAC, undefined], names: ['xkvmmlockfa', 'xkvmmlockfb'],
    interpose: { before: 'lock', commands: [[TOOLS.ip, 'link', 'set', 'dev', 'xkvmmlockfa', 'nomaster']] },
  });
  assert.is(out.ok, false);
  if (!out.ok) {
    assert.is(out.error.code, 'SYSTEM_ERROR');
    assert.match(out.error.message, /mac-lock: could not lock the bridge port of xkvmmlockfa/);
  }
  assert.equal(['xkvmmlockfa', 'xkvmmlockfb'].filter((t) => exists(ns, t)), [], 'no tap is left');
}));

const ours = (ovs: Ovs): string[] => ovs.flows('ovsbr0').filter((l) => l.includes('cookie=0x786b76'));

test('an OVS port whose flows could not be added fails the request: its port, its flows and its tap are gone', withOvs((ns, ovs) => {
  const before = ovs.flows('ovsbr0');
  // The port is removed just before ovs-ofctl adds its flows (in_port=TAP then names no port).
  const out = runJob(ns, {
    op: 'create', bridges: ['ovsbr0'], owner: OWNER, macs: [MAC], names: ['xkvmmlockfc'], ovsdb: ovs.db,
    interpose: { before: 'lock', commands: [['/usr/bin/ovs-vsctl', `--db=${ovs.db}`, 'del-port', 'ovsbr0', 'xkvmmlockfc']] },
  });
  assert.is(out.ok, false);
  if (!out.ok) assert.match(out.error.message, /mac-lock: adding the flows of xkvmmlockfc to ovsbr0 failed/);
  assert.not.ok(exists(ns, 'xkvmmlockfc'), 'the tap is gone');
  assert.not.ok(ovs.ports('ovsbr0').includes('xkvmmlockfc'), 'the port is gone');
  assert.equal(ovs.flows('ovsbr0'), before, 'no flow is left');
  // And made for real (down until its flows are there), then deleted: its two flows come and go.
  const [nic] = value<MadeNic[]>(runJob(ns, {
    op: 'create', bridges: ['ovsbr0'], owner: OWNER, macs: [MAC], names: ['xkvmmlockfe'], ovsdb: ovs.db,
    interpose: { before: 'lock', commands: [isDown('xkvmmlockfe')] },
  }));
  assert.ok(isUp(ns, 'xkvmmlockfe'), 'up once locked');
  assert.is(ours(ovs).length, 2, 'two flows');
  value(runJob(ns, { op: 'delete', nics: [{ bridge: 'ovsbr0', tap: nic?.tap ?? '', type: 'ovs' }], ovsdb: ovs.db }));
  assert.equal(ovs.flows('ovsbr0'), before, 'deleting the tap deleted its flows');
}));

test('a tap whose name ovs-ofctl would read as a port number or a reserved port (LOCAL) is not locked by name: the request fails and nothing is left', withOvs((ns, ovs) => {
  const before = ovs.flows('ovsbr0');
  for (const name of ['1234', 'LOCAL']) {
    const out = runJob(ns, { op: 'create', bridges: ['ovsbr0'], owner: OWNER, macs: [MAC], names: [name], ovsdb: ovs.db });
    assert.is(out.ok, false, name);
    if (!out.ok) assert.match(out.error.message, new RegExp(`${name} cannot be named in an OpenFlow match`));
    assert.not.ok(exists(ns, name), `${name} is gone`);
    assert.not.ok(ovs.ports('ovsbr0').includes(name), `port ${name} is gone`);
  }
  assert.equal(ovs.flows('ovsbr0'), before, 'no flow was added');
}));

test('a mac-locked port on an OVS fake (VLAN) bridge gets its flows on the parent bridge, and deleting it by the fake bridge\'s name deletes them', withOvs((ns, ovs) => {
  ovs.vsctl('add-br', 'fake0', 'ovsbr0', '42');
  const [nic] = value<MadeNic[]>(runJob(ns, { op: 'create', bridges: ['fake0'], owner: OWNER, macs: [MAC], ovsdb: ovs.db }));
  const flows = ours(ovs);
  assert.is(flows.length, 2, `two flows on ovsbr0: ${flows.join(' | ')}`);
  assert.ok(flows.every((f) => f.includes('in_port=')), 'both match the port');
  value(runJob(ns, { op: 'delete', nics: [{ bridge: 'fake0', tap: nic?.tap ?? '', type: 'ovs' }], ovsdb: ovs.db }));
  assert.equal(ours(ovs), [], 'no flow left');
}));

test.run();
