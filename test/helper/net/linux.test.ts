// Taps on Linux bridges, for real, each test in a fresh network namespace (root).
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { DeleteResult, Nic, TapInfo } from '../../../helper/src/net/index.js';
import { sweepStaleNetns, TOOLS } from '../../support/netns.js';
import { deletions, devices, requireRoot, runJob, spawned, tapOwner, tapsLike, value, withNetns } from './support.js';

const OWNER = { uid: 4001, gid: 4002 };


test.before(() => {
  requireRoot();
  sweepStaleNetns();
});

test('a tap on a Linux bridge is owned by the uid, has no group, is up, on that bridge, and made by one ip process',
  withNetns(['br0'], (ns) => {
    const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER });
    const [nic] = value<Nic[]>(out);
    assert.is(nic?.bridge, 'br0');
    assert.is(nic?.type, 'brctl');
    const tap = devices(ns).get(nic?.tap ?? '');
    assert.ok(tap, 'the tap exists');
    assert.is(tap?.kind, 'tun');
    assert.ok(tap?.up, 'the tap is up');
    assert.is(tap?.master, 'br0');
    assert.equal(tapOwner(ns, nic?.tap ?? ''), { owner: OWNER.uid, group: -1 });
    assert.is(out.calls.length, 1);
    assert.equal(out.calls[0]?.args, ['-batch', '-']);
  }));

test('several bridges in one request give taps in the same order, each on its bridge, still one process',
  withNetns(['br0', 'br1', 'br2'], (ns) => {
    const out = runJob(ns, { op: 'create', bridges: ['br2', 'br0', 'br1', 'br0'], owner: OWNER });
    const nics = value<Nic[]>(out);
    assert.equal(nics.map((n) => n.bridge), ['br2', 'br0', 'br1', 'br0']);
    assert.is(new Set(nics.map((n) => n.tap)).size, 4);
    const devs = devices(ns);
    for (const n of nics) assert.is(devs.get(n.tap)?.master, n.bridge);
    assert.is(out.calls.length, 1);
  }));

test('when the third bridge disappears before the taps are made, no tap of the request is left',
  withNetns(['br0', 'br1', 'br2'], (ns) => {
    const out = runJob(ns, {
      op: 'create', bridges: ['br0', 'br1', 'br2'], owner: OWNER,
      interpose: { before: 'ip-batch', commands: [[TOOLS.ip, 'link', 'del', 'br2']] },
    });
    assert.is(out.ok, false);
    if (!out.ok) {
      assert.is(out.error.code, 'NO_SUCH_BRIDGE');
      assert.match(out.error.message, /br2/);
    }
    assert.equal(tapsLike(ns, 'xkvm'), []);
  }));

test('when ip refuses to attach to the third bridge, the taps made before are removed and that device is kept',
  withNetns(['br0', 'br1', 'br2'], (ns) => {
    // br2 becomes a tap (not a bridge) between the kind check and the batch
    const out = runJob(ns, {
      op: 'create', bridges: ['br0', 'br1', 'br2'], owner: OWNER,
      interpose: {
        before: 'ip-batch',
        commands: [[TOOLS.ip, 'link', 'del', 'br2'], [TOOLS.ip, 'tuntap', 'add', 'dev', 'br2', 'mode', 'tap', 'user', '4242']],
      },
    });
    assert.is(out.ok, false);
    assert.equal(tapsLike(ns, 'xkvm'), []);
    assert.ok(devices(ns).has('br2'), 'the device that is not ours is still there');
    assert.equal(tapOwner(ns, 'br2'), { owner: 4242, group: -1 });
    // one batch, one roll-back batch that deletes exactly the request's three taps
    assert.is(spawned(out, 'ip'), 2);
    const made = (out.calls[0]?.input ?? '').match(/tuntap add dev (\S+)/g)?.map((l) => l.split(' ')[3]) ?? [];
    assert.is(made.length, 3);
    assert.equal(deletions(out), [{ group: deletions(out)[0]?.group, taps: made }]);
    assert.ok((deletions(out)[0]?.group ?? 0) >= 0x7800_0000, 'deleted through the helper\'s own interface group');
  }));

test('a bridge renamed, and another made under its name, between two requests gets the second tap on the new bridge (the ip that knew the old one is replaced)',
  withNetns(['br0'], (ns) => {
    const replace = [[TOOLS.ip, 'link', 'set', 'br0', 'name', 'br0old'], [TOOLS.ip, 'link', 'add', 'br0', 'type', 'bridge']];
    const out = runJob(ns, { op: 'create-steps', bridges: ['br0'], owner: OWNER, steps: [{}, { commands: replace }] });
    const [first, second] = value<Nic[][]>(out);
    const devs = devices(ns);
    assert.is(devs.get(first?.[0]?.tap ?? '')?.master, 'br0old', 'the first tap stays on the bridge it was put on');
    assert.is(devs.get(second?.[0]?.tap ?? '')?.master, 'br0', 'the second tap is on the device now called br0');
    assert.equal(deletions(out), [], 'no tap had to be undone: the stale ip was not used');
  }));

test('a bridge renamed and replaced between the check and the batch: the tap is undone and made again on the new bridge, never left on the old one',
  withNetns(['br0'], (ns) => {
    const out = runJob(ns, {
      op: 'create', bridges: ['br0', 'br0'], owner: OWNER,
      interpose: { before: 'ip-batch', commands: [[TOOLS.ip, 'link', 'set', 'br0', 'name', 'br0old'], [TOOLS.ip, 'link', 'add', 'br0', 'type', 'bridge']] },
    });
    const nics = value<Nic[]>(out);
    const devs = devices(ns);
    for (const n of nics) assert.is(devs.get(n.tap)?.master, 'br0');
    assert.equal([...devs.values()].filter((d) => d.master === 'br0old'), [], 'nothing is left on the old bridge');
    // the first attempt's two taps deleted; a second batch made the two returned
    const first = (out.calls[0]?.input ?? '').match(/tuntap add dev (\S+)/g)?.map((l) => l.split(' ')[3]) ?? [];
    assert.equal(deletions(out).map((d) => d.taps), [first]);
    assert.is(spawned(out, 'ip'), 3);
    assert.equal(tapsLike(ns, 'xkvm'), nics.map((n) => n.tap).sort());
  }));

test('a device that already has the generated name is neither deleted nor re-owned, and the tap gets another name',
  withNetns(['br0'], (ns) => {
    ns.ip('tuntap', 'add', 'dev', 'xkvmtaken', 'mode', 'tap', 'user', '4242', 'group', '4243');
    const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER, names: ['xkvmtaken'] });
    const [nic] = value<Nic[]>(out);
    assert.ok(nic !== undefined && nic.tap !== 'xkvmtaken');
    assert.is(devices(ns).get(nic?.tap ?? '')?.master, 'br0');
    const taken = devices(ns).get('xkvmtaken');
    assert.ok(taken, 'the existing device is still there');
    assert.is(taken?.master, undefined);
    assert.is(taken?.up, false);
    assert.equal(tapOwner(ns, 'xkvmtaken'), { owner: 4242, group: 4243 });
    assert.is(spawned(out, 'ip'), 2, 'one retry after the collision');
  }));

test('a collision and then a failure remove only the taps the request made, never the device that was there',
  withNetns(['br0', 'br1', 'br2'], (ns) => {
    ns.ip('link', 'add', 'xkvmtaken', 'type', 'bridge');
    const out = runJob(ns, {
      op: 'create', bridges: ['br0', 'br1', 'br2'], owner: OWNER, names: ['xkvmown1', 'xkvmtaken', 'xkvmown2', 'xkvmown3'],
      interpose: { before: 'ip-batch', commands: [[TOOLS.ip, 'link', 'del', 'br2']] },
    });
    assert.is(out.ok, false);
    assert.equal(tapsLike(ns, 'xkvm'), []);
    assert.is(devices(ns).get('xkvmtaken')?.kind, 'bridge');
    assert.not.ok(deletions(out).some((d) => d.taps.includes('xkvmtaken')), 'the device that was there is not deleted');
  }));

test('a request that meets only taken names gives up after 16 collisions and deletes none of them, even the same owner\'s',
  withNetns(['br0'], (ns) => {
    const taken = Array.from({ length: 17 }, (_, i) => `xkvmt${String(i).padStart(2, '0')}`);
    // exactly like the taps the request itself would make
    for (const t of taken) ns.ip('tuntap', 'add', 'dev', t, 'mode', 'tap', 'user', String(OWNER.uid));
    const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER, names: taken });
    assert.is(out.ok, false);
    if (!out.ok) {
      assert.is(out.error.code, 'SYSTEM_ERROR');
      assert.match(out.error.message, /16 collisions/);
    }
    assert.equal(tapsLike(ns, 'xkvm'), taken);
    assert.is(spawned(out, 'ip'), 17, 'no roll-back batch: nothing of ours to delete');
  }));

test('a generated name that is not a valid interface name is never used', withNetns(['br0'], (ns) => {
  const out = runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER, names: ['-bad', 'a'.repeat(16), 'x/y'] });
  const [nic] = value<Nic[]>(out);
  assert.match(nic?.tap ?? '', /^xkvm[a-z2-7]{8}$/);
  assert.not.match(out.calls[0]?.input ?? '', /-bad|aaaaaaaaaaaaaaaa|x\/y/);
}));

test('a device that is not a bridge is NO_SUCH_BRIDGE naming it, and no tap is made', withNetns(['br0'], (ns) => {
  ns.ip('tuntap', 'add', 'dev', 'tapx', 'mode', 'tap');
  for (const bad of ['lo', 'tapx', 'nosuchdev']) {
    const out = runJob(ns, { op: 'create', bridges: ['br0', bad], owner: OWNER });
    assert.is(out.ok, false);
    if (!out.ok) {
      assert.is(out.error.code, 'NO_SUCH_BRIDGE');
      assert.match(out.error.message, new RegExp(`\\b${bad}\\b`));
      assert.not.match(out.error.message, /\bbr0\b/);
    }
    assert.is(spawned(out, 'ip'), 0);
  }
  assert.equal(tapsLike(ns, 'xkvm'), []);
}));

test('a Linux bridge is recognised without running any program', withNetns(['br0', 'br1'], (ns) => {
  const out = runJob(ns, { op: 'kinds', bridges: ['br1', 'br0', 'br1'] });
  assert.equal(value(out), { kinds: { br1: 'linux', br0: 'linux' }, missing: [] });
  assert.equal(out.calls, []);
}));

test('deleteTaps removes the taps with one ip process, and a second call finds them gone', withNetns(['br0', 'br1'], (ns) => {
  const nics = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['br0', 'br1'], owner: OWNER }));
  const missing: Nic = { bridge: 'br0', tap: 'xkvmneverwas', type: 'brctl' };
  const first = runJob(ns, { op: 'delete', nics: [...nics, missing] });
  const r1 = value<DeleteResult>(first);
  assert.equal(r1.deleted.sort(), nics.map((n) => n.tap).sort());
  assert.equal(r1.gone, ['xkvmneverwas']);
  assert.equal(first.calls.map((c) => c.args), [['-force', '-batch', '-']]);
  assert.equal(tapsLike(ns, 'xkvm'), []);
  const second = runJob(ns, { op: 'delete', nics });
  assert.equal(value<DeleteResult>(second).gone.sort(), nics.map((n) => n.tap).sort());
  assert.equal(second.calls, []);
}));

test('deleteTaps leaves alone a device that is not a tap, and a tap of another owner when an owner is given, and says so in an error',
  withNetns(['br0'], (ns) => {
    ns.ip('tuntap', 'add', 'dev', 'xkvmother', 'mode', 'tap', 'user', '4242');
    const [mine] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['br0'], owner: OWNER }));
    const out = runJob(ns, {
      op: 'delete', uid: OWNER.uid,
      nics: [mine as Nic, { bridge: 'br0', tap: 'br0', type: 'brctl' }, { bridge: 'br0', tap: 'xkvmother', type: 'brctl' }],
    });
    assert.is(out.ok, false, 'what is left in place is never reported as done');
    if (!out.ok) {
      assert.is(out.error.code, 'SYSTEM_ERROR');
      assert.match(out.error.message, /br0: left in place: it is not a tap device/);
      assert.match(out.error.message, /xkvmother: left in place: it is not owned by uid 4001/);
      assert.not.match(out.error.message, mine?.tap ?? '');
    }
    assert.not.ok(devices(ns).has(mine?.tap ?? ''), 'the owner\'s tap was deleted all the same');
    assert.ok(devices(ns).has('br0'));
    assert.equal(tapOwner(ns, 'xkvmother').owner, 4242);
  }));

test('deleteTaps given a tap\'s ifindex deletes only the device that has it: a name now held by another device is reported gone',
  withNetns(['br0'], (ns) => {
    const [first, second] = value<Nic[]>(runJob(ns, { op: 'create', bridges: ['br0', 'br0'], owner: OWNER }));
    const index = (tap: string): number => Number(ns.exec(['/usr/bin/cat', `/sys/class/net/${tap}/ifindex`]).stdout.trim());
    const a = first?.tap ?? '';
    const b = second?.tap ?? '';
    const wrong = index(b) + 1000;
    const out = runJob(ns, { op: 'delete', nics: [{ ...first as Nic, ifindex: index(a) }, { ...second as Nic, ifindex: wrong }] });
    assert.equal(value<DeleteResult>(out), { deleted: [a], gone: [b] });
    assert.ok(devices(ns).has(b), 'the device whose ifindex is not the one given is not touched');
    assert.not.ok(devices(ns).has(a));
  }));

test('tapInfo gives owner and group of a tap, none when unset, and isTap false for a bridge', withNetns(['br0'], (ns) => {
  ns.ip('tuntap', 'add', 'dev', 'tapa', 'mode', 'tap', 'user', '4001', 'group', '4002');
  ns.ip('tuntap', 'add', 'dev', 'tapb', 'mode', 'tap');
  ns.ip('tuntap', 'add', 'dev', 'tunc', 'mode', 'tun', 'user', '4001');
  const info = (name: string): TapInfo => value<TapInfo>(runJob(ns, { op: 'tapinfo', name }));
  assert.equal(info('tapa'), { exists: true, isTap: true, owner: 4001, group: 4002 });
  assert.equal(info('tapb'), { exists: true, isTap: true });
  assert.equal(info('tunc'), { exists: true, isTap: false });
  assert.equal(info('br0'), { exists: true, isTap: false });
  assert.equal(info('nothere'), { exists: false, isTap: false });
}));

test('ifindexOf gives the interface index /sys shows for a device of that name, and nothing once it is gone', withNetns(['br0'], (ns) => {
  ns.ip('tuntap', 'add', 'dev', 'tapa', 'mode', 'tap', 'user', '4001');
  const shown = (name: string): number => (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', name)) as { ifindex: number }[])[0]?.ifindex ?? -1;
  const first = value<number>(runJob(ns, { op: 'ifindex', name: 'tapa' }));
  assert.is(first, shown('tapa'));
  assert.is(value<number>(runJob(ns, { op: 'ifindex', name: 'br0' })), shown('br0'));
  // The same name again is another device, with another index.
  ns.ip('link', 'del', 'tapa');
  assert.is(value<number | null>(runJob(ns, { op: 'ifindex', name: 'tapa' })), null);
  ns.ip('tuntap', 'add', 'dev', 'tapa', 'mode', 'tap', 'user', '4001');
  const second = value<number>(runJob(ns, { op: 'ifindex', name: 'tapa' }));
  assert.is(second, shown('tapa'));
  assert.is.not(second, first);
}));

test.run();
