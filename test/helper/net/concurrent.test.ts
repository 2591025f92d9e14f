// Invariant 5: requests from separate helper processes at once never collide on names (root).
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Nic } from '../../../helper/src/net/index.js';
import { createNetns, sweepStaleNetns } from '../../support/netns.js';
import { requireRoot, spawned, spawnJob, tapOwner, tapsLike, value, devices } from './support.js';

test('two helper processes making 8 taps each at once, drawing from the same names, never share a tap', async () => {
  requireRoot();
  sweepStaleNetns();
  const ns = createNetns({ bridges: ['br0', 'br1'] });
  try {
    // Both draw the same names in the same order, so collisions are certain, not just possible.
    const pool = Array.from({ length: 24 }, (_, i) => `xkvmc${String(i).padStart(2, '0')}`);
    const bridges = ['br0', 'br1', 'br0', 'br1', 'br0', 'br1', 'br0', 'br1'];
    const alice = { uid: 5001, gid: 5001 };
    const bob = { uid: 5002, gid: 5002 };
    const [a, b] = await Promise.all([
      spawnJob(ns, { op: 'create', bridges, owner: alice, names: pool }),
      spawnJob(ns, { op: 'create', bridges, owner: bob, names: pool }),
    ]);
    const aTaps = value<Nic[]>(a).map((n) => n.tap);
    const bTaps = value<Nic[]>(b).map((n) => n.tap);
    assert.is(aTaps.length, 8);
    assert.is(bTaps.length, 8);
    assert.is(new Set([...aTaps, ...bTaps]).size, 16, 'no name given twice');
    assert.equal(tapsLike(ns, 'xkvm'), [...aTaps, ...bTaps].sort(), 'no tap left over besides those');
    for (const t of aTaps) assert.equal(tapOwner(ns, t), { owner: alice.uid, group: -1 });
    for (const t of bTaps) assert.equal(tapOwner(ns, t), { owner: bob.uid, group: -1 });
    const devs = devices(ns);
    for (const [i, t] of [...aTaps.entries(), ...bTaps.entries()]) assert.is(devs.get(t)?.master, bridges[i]);
    // at least one of them met the other's names and retried
    assert.ok(spawned(a, 'ip') + spawned(b, 'ip') > 2, `ip runs: ${spawned(a, 'ip')} + ${spawned(b, 'ip')}`);
  } finally {
    ns.destroy();
  }
});

test('two processes with random names make 8 taps each at once, all distinct and owned by their callers', async () => {
  requireRoot();
  const ns = createNetns({ bridges: ['br0'] });
  try {
    const bridges = Array.from({ length: 8 }, () => 'br0');
    const [a, b] = await Promise.all([
      spawnJob(ns, { op: 'create', bridges, owner: { uid: 5001, gid: 5001 } }),
      spawnJob(ns, { op: 'create', bridges, owner: { uid: 5002, gid: 5002 } }),
    ]);
    const all = [...value<Nic[]>(a), ...value<Nic[]>(b)].map((n) => n.tap);
    assert.is(new Set(all).size, 16);
    assert.equal(tapsLike(ns, 'xkvm'), [...all].sort());
    assert.is(spawned(a, 'ip'), 1);
    assert.is(spawned(b, 'ip'), 1);
  } finally {
    ns.destroy();
  }
});

test.run();
