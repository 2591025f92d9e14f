// Open vSwitch bridges (userspace datapath, no kernel module), for real: each test gets a fresh
// namespace with its own ovsdb-server and ovs-vswitchd, a Linux bridge br0 and two OVS bridges
// (two, to prove detection works with more than one). Root.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { CleanupResult, DeleteResult, Nic } from '../../../helper/src/net/index.js';
import { sweepStaleNetns } from '../../support/netns.js';
import { OVS_TOOLS, type Ovs } from '../../support/ovs.js';
import { devices, requireRoot, runJob, spawned, tapOwner, tapsLike, value, withOvs } from './support.js';

const ALICE = { uid: 6001, gid: 6001 };
const BOB = { uid: 6002, gid: 6002 };

interface PortRow { name: string; bridge: string; externalIds: Record<string, string>; otherConfig: Record<string, string> }

/** The ports of our taps as OVS has them (bridge from port-to-br). */
function port(ovs: Ovs, tap: string): PortRow | undefined {
  const out = JSON.parse(ovs.vsctl('--format=json', '--if-exists', '--columns=name,external_ids,other_config', 'list', 'Port', tap)) as {
    data: [string, ['map', [string, string][]], ['map', [string, string][]]][];
  };
  const row = out.data[0];
  if (row === undefined) return undefined;
  return {
    name: row[0],
    bridge: ovs.vsctl('port-to-br', tap).trim(),
    externalIds: Object.fromEntries(row[1][1]),
    otherConfig: Object.fromEntries(row[2][1]),
  };
}

test.before(() => {
  requireRoot();
  sweepStaleNetns();
});

test('bridge kinds tell a Linux bridge from two OVS bridges with one ovs-vsctl, and name the one that is neither',
  withOvs((ns, ovs) => {
    const out = runJob(ns, { op: 'kinds', bridges: ['ovsbr1', 'br0', 'ovsbr0'], ovsdb: ovs.db });
    assert.equal(value(out), { kinds: { ovsbr1: 'ovs', br0: 'linux', ovsbr0: 'ovs' }, missing: [] });
    assert.equal(out.calls.map((c) => c.args), [[`--db=${ovs.db}`, '--timeout=10', '--', 'list-br']]);
    assert.equal(value(runJob(ns, { op: 'kinds', bridges: ['ovsbr0', 'ovs-netdev', 'br0'], ovsdb: ovs.db })),
      { kinds: { ovsbr0: 'ovs', br0: 'linux' }, missing: ['ovs-netdev'] });
    const bad = runJob(ns, { op: 'create', bridges: ['ovsbr0', 'ovs-netdev', 'br0'], owner: ALICE, ovsdb: ovs.db });
    assert.is(bad.ok, false);
    if (!bad.ok) {
      assert.is(bad.error.code, 'NO_SUCH_BRIDGE');
      assert.match(bad.error.message, /ovs-netdev/);
      assert.not.match(bad.error.message, /ovsbr0|br0,/);
    }
    assert.equal(tapsLike(ns, 'xkvm'), []);
  }));

test('taps on two OVS bridges and a Linux bridge come back in order, up, owned, and the ports tagged',
  withOvs((ns, ovs) => {
    const out = runJob(ns, { op: 'create', bridges: ['ovsbr0', 'br0', 'ovsbr1'], owner: ALICE, ovsdb: ovs.db, session: 'sess-1' });
    const nics = value<Nic[]>(out);
    assert.equal(nics.map((n) => [n.bridge, n.type]), [['ovsbr0', 'ovs'], ['br0', 'brctl'], ['ovsbr1', 'ovs']]);
    const devs = devices(ns);
    for (const n of nics) {
      assert.ok(devs.get(n.tap)?.up, `${n.tap} is up`);
      assert.equal(tapOwner(ns, n.tap), { owner: ALICE.uid, group: -1 });
    }
    assert.is(devs.get(nics[1]?.tap ?? '')?.master, 'br0');
    for (const n of [nics[0], nics[2]]) {
      const p = port(ovs, n?.tap ?? '');
      assert.is(p?.bridge, n?.bridge);
      assert.equal(p?.externalIds, { 'xkvm-owner': '6001', 'xkvm-session': 'sess-1' });
      assert.equal(p?.otherConfig, { transient: 'true' });
    }
    // exactly what `ovs-ctl --delete-transient-ports` asks
    const transient = ovs.vsctl('--bare', '--', '--columns=name', 'find', 'port', 'other_config:transient=true')
      .split('\n').filter((l) => l !== '').sort();
    assert.equal(transient, [nics[0]?.tap, nics[2]?.tap].sort());
    // one ip, one list-br, one add-port transaction
    assert.is(spawned(out, 'ip'), 1);
    assert.is(spawned(out, 'ovs-vsctl'), 2);
  }));

test('when adding the OVS ports fails, no tap and no port of the request is left', withOvs((ns, ovs) => {
  const out = runJob(ns, {
    op: 'create', bridges: ['br0', 'ovsbr0', 'ovsbr1'], owner: ALICE, ovsdb: ovs.db,
    interpose: { before: 'add-port', commands: [[OVS_TOOLS.vsctl, `--db=${ovs.db}`, 'del-br', 'ovsbr1']] },
  });
  assert.is(out.ok, false);
  if (!out.ok) {
    assert.is(out.error.code, 'SYSTEM_ERROR');
    assert.match(out.error.message, /ovsbr1/);
  }
  assert.equal(tapsLike(ns, 'xkvm'), []);
  assert.is(ovs.vsctl('list-ports', 'ovsbr0').trim(), '');
}));

test('ovsCleanup removes the caller\'s own port and refuses another uid\'s, an untagged one, the wrong bridge and a missing one',
  withOvs((ns, ovs) => {
    const [a0, a1] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr0', 'ovsbr1'], owner: ALICE, ovsdb: ovs.db }));
    const [b0] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr0'], owner: BOB, ovsdb: ovs.db }));
    ns.ip('tuntap', 'add', 'dev', 'admintap', 'mode', 'tap');
    ovs.vsctl('add-port', 'ovsbr0', 'admintap');
    const mine = a0?.tap ?? '';
    const out = runJob(ns, {
      op: 'cleanup', uid: ALICE.uid, ovsdb: ovs.db,
      ports: [
        { bridge: 'ovsbr0', tap: mine },
        { bridge: 'ovsbr0', tap: a1?.tap ?? '' }, // Alice's, but on ovsbr1
        { bridge: 'ovsbr0', tap: b0?.tap ?? '' }, // Bob's
        { bridge: 'ovsbr0', tap: 'admintap' }, // nobody's
        { bridge: 'ovsbr0', tap: 'xkvmnothere' },
        { bridge: 'ovsbr0', tap: mine }, // twice
      ],
    });
    const r = value<CleanupResult>(out);
    assert.equal(r.removed, [{ bridge: 'ovsbr0', tap: mine }]);
    assert.equal(r.refused.map((x) => [x.tap, x.code]), [
      [a1?.tap, 'NO_SUCH_PORT'], [b0?.tap, 'NOT_OWNER'], ['admintap', 'NOT_OWNER'], ['xkvmnothere', 'NO_SUCH_PORT'],
    ]);
    assert.is(port(ovs, mine), undefined);
    assert.ok(devices(ns).has(mine), 'like the reference, the tap itself stays');
    assert.is(port(ovs, a1?.tap ?? '')?.bridge, 'ovsbr1');
    assert.is(port(ovs, b0?.tap ?? '')?.bridge, 'ovsbr0');
    assert.is(port(ovs, 'admintap')?.bridge, 'ovsbr0');
    // one read, one removal
    assert.is(spawned(out, 'ovs-vsctl'), 2);
    assert.is(spawned(out, 'ip'), 0);
  }));

test('a cleanup that may remove nothing runs no removal at all', withOvs((ns, ovs) => {
  const [b0] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr0'], owner: BOB, ovsdb: ovs.db }));
  const out = runJob(ns, { op: 'cleanup', uid: ALICE.uid, ovsdb: ovs.db, ports: [{ bridge: 'ovsbr0', tap: b0?.tap ?? '' }] });
  assert.equal(value<CleanupResult>(out).removed, []);
  assert.is(spawned(out, 'ovs-vsctl'), 1);
  assert.is(port(ovs, b0?.tap ?? '')?.bridge, 'ovsbr0');
}));

test('deleteTaps removes OVS ports and taps (one ovs-vsctl, one ip), and a second call is harmless', withOvs((ns, ovs) => {
  const nics = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr0', 'br0', 'ovsbr1'], owner: ALICE, ovsdb: ovs.db }));
  const out = runJob(ns, { op: 'delete', nics, ovsdb: ovs.db });
  assert.equal(value<DeleteResult>(out).deleted.sort(), nics.map((n) => n.tap).sort());
  assert.is(spawned(out, 'ovs-vsctl'), 1);
  assert.is(spawned(out, 'ip'), 1);
  assert.equal(tapsLike(ns, 'xkvm'), []);
  assert.is(ovs.vsctl('list-ports', 'ovsbr0').trim() + ovs.vsctl('list-ports', 'ovsbr1').trim(), '');
  const again = runJob(ns, { op: 'delete', nics, ovsdb: ovs.db });
  assert.equal(value<DeleteResult>(again).gone.sort(), nics.map((n) => n.tap).sort());
  assert.is(spawned(again, 'ip'), 0);
}));

test('deleteTaps leaves alone a port that is not on the bridge named, still removes the others, and reports it as an error', withOvs((ns, ovs) => {
  const [x, y] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr0', 'ovsbr0'], owner: ALICE, ovsdb: ovs.db }));
  // an admin moves x to ovsbr1
  ovs.vsctl('del-port', 'ovsbr0', x?.tap ?? '', '--', 'add-port', 'ovsbr1', x?.tap ?? '');
  const out = runJob(ns, { op: 'delete', nics: [x as Nic, y as Nic], ovsdb: ovs.db });
  assert.is(out.ok, false);
  if (!out.ok) {
    assert.is(out.error.code, 'SYSTEM_ERROR');
    assert.match(out.error.message, `${x?.tap ?? '?'}: its Open vSwitch port was left in place (port is on ovsbr1, not ovsbr0)`);
  }
  assert.is(port(ovs, x?.tap ?? '')?.bridge, 'ovsbr1');
  assert.is(port(ovs, y?.tap ?? ''), undefined);
  assert.equal(tapsLike(ns, 'xkvm'), [], 'both taps are deleted all the same');
}));

test('deleteTaps with an owner leaves alone another uid\'s port and tap, removes the owner\'s, and reports what it left', withOvs((ns, ovs) => {
  const [mine] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr0'], owner: ALICE, ovsdb: ovs.db }));
  const [theirs] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['ovsbr1'], owner: BOB, ovsdb: ovs.db }));
  const out = runJob(ns, { op: 'delete', nics: [mine as Nic, theirs as Nic], uid: ALICE.uid, ovsdb: ovs.db });
  assert.is(out.ok, false);
  if (!out.ok) {
    assert.match(out.error.message, `${theirs?.tap ?? '?'}: its Open vSwitch port was left in place`);
    assert.match(out.error.message, `${theirs?.tap ?? '?'}: left in place: it is not owned by uid ${ALICE.uid}`);
    assert.not.match(out.error.message, mine?.tap ?? '?');
  }
  assert.is(port(ovs, mine?.tap ?? ''), undefined);
  assert.is(port(ovs, theirs?.tap ?? '')?.bridge, 'ovsbr1');
  assert.equal(tapsLike(ns, 'xkvm'), [theirs?.tap]);
  assert.is(spawned(out, 'ovs-vsctl'), 2, 'read, then remove');
}));

/** A fake (VLAN) bridge fake0 on ovsbr0, VLAN 42: a port of ovsbr0 that ovs-vsctl shows as a bridge of its own. */
function addFakeBridge(ovs: Ovs): void {
  ovs.vsctl('add-br', 'fake0', 'ovsbr0', '42');
  assert.is(ovs.vsctl('br-to-parent', 'fake0').trim(), 'ovsbr0');
}

test('a tap on an OVS fake (VLAN) bridge becomes a port of its parent with the VLAN tag, and deleteTaps with an owner removes port and tap',
  withOvs((ns, ovs) => {
    addFakeBridge(ovs);
    assert.equal(value(runJob(ns, { op: 'kinds', bridges: ['fake0'], ovsdb: ovs.db })), { kinds: { fake0: 'ovs' }, missing: [] });
    const nics = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['fake0', 'ovsbr0'], owner: ALICE, ovsdb: ovs.db, session: 's1' }));
    const [onFake, onParent] = nics.map((n) => n.tap);
    assert.is(port(ovs, onFake ?? '')?.bridge, 'fake0');
    assert.is(ovs.vsctl('get', 'Port', onFake ?? '', 'tag').trim(), '42');
    assert.is(port(ovs, onParent ?? '')?.bridge, 'ovsbr0');
    // As the helper ends a session: with the owner, which reads the ports first.
    const out = runJob(ns, { op: 'delete', nics, uid: ALICE.uid, ovsdb: ovs.db });
    assert.equal(value<DeleteResult>(out).deleted.sort(), nics.map((n) => n.tap).sort());
    assert.is(port(ovs, onFake ?? ''), undefined, 'the port on the fake bridge is gone');
    assert.is(port(ovs, onParent ?? ''), undefined);
    assert.equal(ovs.ports('ovsbr0'), [], 'the parent bridge has none of our ports left');
    assert.equal(tapsLike(ns, 'xkvm'), []);
    // and without an owner (one transaction, no read)
    const again = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['fake0'], owner: ALICE, ovsdb: ovs.db }));
    assert.equal(value<DeleteResult>(runJob(ns, { op: 'delete', nics: again, ovsdb: ovs.db })).deleted, [again[0]?.tap]);
    assert.is(port(ovs, again[0]?.tap ?? ''), undefined);
  }));

test('ovsCleanup removes the caller\'s own port on a fake bridge named as such, and refuses it named under the parent bridge',
  withOvs((ns, ovs) => {
    addFakeBridge(ovs);
    const [mine] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['fake0'], owner: ALICE, ovsdb: ovs.db }));
    const tap = mine?.tap ?? '';
    const parent = value<CleanupResult>(runJob(ns, { op: 'cleanup', uid: ALICE.uid, ovsdb: ovs.db, ports: [{ bridge: 'ovsbr0', tap }] }));
    assert.equal(parent.refused.map((r) => [r.tap, r.code]), [[tap, 'NO_SUCH_PORT']]);
    assert.is(port(ovs, tap)?.bridge, 'fake0');
    const theirs = value<CleanupResult>(runJob(ns, { op: 'cleanup', uid: BOB.uid, ovsdb: ovs.db, ports: [{ bridge: 'fake0', tap }] }));
    assert.equal(theirs.refused.map((r) => [r.tap, r.code]), [[tap, 'NOT_OWNER']]);
    const out = runJob(ns, { op: 'cleanup', uid: ALICE.uid, ovsdb: ovs.db, ports: [{ bridge: 'fake0', tap }] });
    assert.equal(value<CleanupResult>(out), { removed: [{ bridge: 'fake0', tap }], refused: [] });
    assert.is(port(ovs, tap), undefined);
    assert.ok(devices(ns).has(tap), 'like the reference, the tap itself stays');
  }));

test.run();
