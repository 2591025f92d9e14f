// Several requests made in one go (createTapsMany: what the helper does with requests that
// arrive together), for real, each test in a fresh network namespace (root). Each request must
// come out exactly as it would alone: its own taps, owner and bridges, or its own error with
// nothing of it left, whatever happens to the others.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Nic } from '../../../helper/src/net/index.js';
import { createNetns, sweepStaleNetns, TOOLS, type Netns } from '../../support/netns.js';
import { deletions, devices, requireRoot, runJob, spawned, tapOwner, tapsLike, value } from './support.js';

type Outcome = { nics: Nic[]; ifindexes: number[] } | { error: { code: string; message: string }; left: { tap: string; ifindex: number | null }[] };

const ALICE = { uid: 4101, gid: 4101 };
const BOB = { uid: 4102, gid: 4102 };
const CAROL = { uid: 4103, gid: 4103 };

function withNetns(bridges: string[], fn: (ns: Netns) => void): () => void {
  return () => {
    const ns = createNetns({ bridges });
    try {
      fn(ns);
    } finally {
      ns.destroy();
    }
  };
}

function nicsOf(o: Outcome | undefined): Nic[] {
  if (o === undefined || 'error' in o) throw new Error(`expected taps, got ${JSON.stringify(o)}`);
  return o.nics;
}

function errorOf(o: Outcome | undefined): { code: string; message: string } {
  if (o === undefined || !('error' in o)) throw new Error(`expected an error, got ${JSON.stringify(o)}`);
  return o.error;
}

test.before(() => {
  requireRoot();
  sweepStaleNetns();
});

test('three requests from three users get their own taps, owners and bridges, all from one ip batch', withNetns(['br0', 'br1'], (ns) => {
  const out = runJob(ns, { op: 'create-many', jobs: [
    { bridges: ['br0'], owner: ALICE }, { bridges: ['br1', 'br0'], owner: BOB }, { bridges: ['br1'], owner: CAROL },
  ] });
  const [a, b, c] = value<Outcome[]>(out).map(nicsOf);
  assert.equal([a, b, c].map((n) => n?.map((x) => x.bridge)), [['br0'], ['br1', 'br0'], ['br1']]);
  const devs = devices(ns);
  for (const [nics, owner] of [[a, ALICE], [b, BOB], [c, CAROL]] as const) {
    for (const n of nics ?? []) {
      assert.is(devs.get(n.tap)?.master, n.bridge);
      assert.ok(devs.get(n.tap)?.up);
      assert.equal(tapOwner(ns, n.tap), { owner: owner.uid, group: -1 });
    }
  }
  assert.is(out.calls.length, 1);
  assert.is(tapsLike(ns, 'xkvm').length, 4);
}));

test('a request whose bridge cannot take a tap fails alone: only its tap is removed, the others keep theirs', withNetns(['br0', 'br1', 'br2'], (ns) => {
  // br1 becomes a tap (not a bridge) between the kind check and the batch: its `master` line fails.
  const out = runJob(ns, {
    op: 'create-many',
    jobs: [{ bridges: ['br0'], owner: ALICE }, { bridges: ['br0', 'br1'], owner: BOB }, { bridges: ['br2'], owner: CAROL }],
    interpose: { before: 'ip-batch', commands: [[TOOLS.ip, 'link', 'del', 'br1'], [TOOLS.ip, 'tuntap', 'add', 'dev', 'br1', 'mode', 'tap', 'user', '4242']] },
  });
  const [a, b, c] = value<Outcome[]>(out);
  assert.match(errorOf(b).message, /br1/);
  const kept = [...nicsOf(a), ...nicsOf(c)].map((n) => n.tap).sort();
  assert.equal(tapsLike(ns, 'xkvm'), kept);
  assert.equal(tapOwner(ns, 'br1'), { owner: 4242, group: -1 });
  const made = (out.calls[0]?.input ?? '').match(/tuntap add dev \S+ mode tap user 4102/g)?.map((l) => l.split(' ')[3]) ?? [];
  assert.equal(deletions(out).map((d) => d.taps.sort()), [made.sort()], 'exactly bob\'s two taps were deleted, in one group');
  assert.is(made.length, 2);
}));

test('when a bridge vanishes and ip cannot say which line failed, each request is retried alone and only that one fails', withNetns(['br0', 'br1', 'br2'], (ns) => {
  const out = runJob(ns, {
    op: 'create-many',
    jobs: [{ bridges: ['br0'], owner: ALICE }, { bridges: ['br2'], owner: BOB }, { bridges: ['br1'], owner: CAROL }],
    interpose: { before: 'ip-batch', commands: [[TOOLS.ip, 'link', 'del', 'br2']] },
  });
  const [a, b, c] = value<Outcome[]>(out);
  assert.is(errorOf(b).code, 'NO_SUCH_BRIDGE');
  assert.match(errorOf(b).message, /br2/);
  assert.equal(tapsLike(ns, 'xkvm'), [...nicsOf(a), ...nicsOf(c)].map((n) => n.tap).sort());
  for (const n of [...nicsOf(a), ...nicsOf(c)]) assert.is(devices(ns).get(n.tap)?.master, n.bridge);
}));

test('a name collision in one request is retried for that tap only and the batch goes on', withNetns(['br0'], (ns) => {
  ns.ip('tuntap', 'add', 'dev', 'xkvmtaken', 'mode', 'tap', 'user', '4242');
  const out = runJob(ns, {
    op: 'create-many', names: ['xkvmown1', 'xkvmtaken', 'xkvmown3'],
    jobs: [{ bridges: ['br0'], owner: ALICE }, { bridges: ['br0'], owner: BOB }, { bridges: ['br0'], owner: CAROL }],
  });
  const [a, b, c] = value<Outcome[]>(out).map(nicsOf);
  assert.is(a?.[0]?.tap, 'xkvmown1');
  assert.ok(b?.[0]?.tap !== undefined && b[0].tap !== 'xkvmtaken');
  assert.is(c?.[0]?.tap, 'xkvmown3');
  assert.equal(tapOwner(ns, b?.[0]?.tap ?? ''), { owner: BOB.uid, group: -1 });
  assert.equal(tapOwner(ns, 'xkvmtaken'), { owner: 4242, group: -1 });
  assert.is(spawned(out, 'ip'), 2, 'one retry after the collision');
}));

test('fd jobs: a tap opened by the helper (not persistent, one fd a queue) is announced, attached and given its MTU by the same batch without tuntap add; a name that exists is a collision retried under another; the taps die with the worker\'s fds', withNetns(['br0'], (ns) => {
  ns.ip('link', 'set', 'dev', 'br0', 'mtu', '9000');
  ns.ip('tuntap', 'add', 'dev', 'xkvmtaken', 'mode', 'tap', 'user', '4242');
  const out = runJob(ns, {
    op: 'create-many', announce: true, names: ['xkvmtaken', 'xkvmnamed1', 'xkvmfd1'],
    jobs: [{ bridges: ['br0'], owner: ALICE, fd: true, queues: [2] }, { bridges: ['br0'], owner: BOB }],
  });
  const [fd, named] = value<(Outcome & { fds?: number[][]; ifindexes?: number[] })[]>(out);
  assert.equal(nicsOf(fd).map((n) => [n.tap, n.bridge]), [['xkvmfd1', 'br0']], 'another name after the collision');
  assert.is(fd?.fds?.[0]?.length, 2, 'one fd a queue');
  assert.ok((fd?.ifindexes?.[0] ?? 0) > 0, 'it existed, attached, when the call ended');
  assert.is(nicsOf(named)[0]?.tap, 'xkvmnamed1');
  const announced = out.calls.filter((c) => c.file === 'beforeCreate').flatMap((c) => c.args);
  assert.ok(announced.indexOf('0:0:br0:linux:xkvmtaken') >= 0 && announced.indexOf('0:0:br0:linux:xkvmtaken') < announced.indexOf('0:0:br0:linux:xkvmfd1'),
    `announced before opening, then again under the new name: ${announced.join(' ')}`);
  const batch = out.calls.filter((c) => c.args.includes('-batch')).map((c) => c.input ?? '').join('');
  assert.not.match(batch, /tuntap add dev xkvmfd1/, 'not made by ip');
  assert.match(batch, /link set dev xkvmfd1 mtu 9000 up master br0/);
  assert.equal(tapOwner(ns, 'xkvmtaken'), { owner: 4242, group: -1 }, 'the existing device is not joined');
  const left = devices(ns);
  assert.ok(!left.has('xkvmfd1'), 'gone with the worker\'s fds');
  assert.ok(left.has('xkvmnamed1') && left.has('xkvmtaken'));
}));

test('fd jobs that fail after their taps were opened (a bridge gone before the batch, a lock that cannot be made) keep no fd open and leave no tap; the successful one\'s fds are all the call still holds', withNetns(['br0', 'br1', 'br2'], (ns) => {
  const out = runJob(ns, {
    op: 'create-many', tunFds: true, names: ['xkvmfdok', 'xkvmfdgone1', 'xkvmfdgone2', 'xkvmfdlock'],
    bridgeProgram: { exitCode: 1, stderr: 'RTNETLINK answers: Operation not supported' },
    jobs: [
      { bridges: ['br0'], owner: ALICE, fd: true, queues: [3] },
      { bridges: ['br1', 'br2'], owner: BOB, fd: true },
      { bridges: ['br0'], owner: CAROL, fd: true, macs: ['52:54:00:0f:d0:02'] },
    ],
    interpose: { before: 'ip-batch', commands: [[TOOLS.ip, 'link', 'del', 'br2']] },
  });
  const { outcomes, tunFds } = value<{ outcomes: (Outcome & { fds?: number[][] })[]; tunFds: string[] }>(out);
  const [ok, gone, unlocked] = outcomes;
  const [tap] = nicsOf(ok).map((n) => n.tap);
  assert.is(errorOf(gone).code, 'NO_SUCH_BRIDGE');
  assert.is(errorOf(unlocked).code, 'SYSTEM_ERROR');
  assert.equal(tunFds, [tap, tap, tap], 'only the made tap\'s three queues are open');
  assert.equal(tapsLike(ns, 'xkvm'), [], 'and it died with the worker');
}));

test('a malformed or missing bridge is that request\'s own error, and no line of it reaches ip', withNetns(['br0'], (ns) => {
  const out = runJob(ns, {
    op: 'create-many',
    jobs: [{ bridges: ['br0'], owner: ALICE }, { bridges: ['-bad'], owner: BOB }, { bridges: ['nosuchbr'], owner: CAROL }, { bridges: [], owner: CAROL }],
  });
  const [a, b, c, d] = value<Outcome[]>(out);
  assert.is(nicsOf(a).length, 1);
  assert.is(errorOf(b).code, 'BAD_NAME');
  assert.is(errorOf(c).code, 'NO_SUCH_BRIDGE');
  assert.equal(nicsOf(d), []);
  assert.is(spawned(out, 'ip'), 1);
  assert.not.match(out.calls.find((c) => c.args.includes('-batch'))?.input ?? '', /bad|nosuchbr/);
}));

test('a request that runs out of names after 16 collisions fails alone: its own tap is removed, the taken ones (even its owner\'s) are not, the others get theirs', withNetns(['br0', 'br1'], (ns) => {
  const taken = Array.from({ length: 17 }, (_, i) => `xkvmt${String(i).padStart(2, '0')}`);
  for (const t of taken) ns.ip('tuntap', 'add', 'dev', t, 'mode', 'tap', 'user', String(BOB.uid));
  // Names are drawn in order: alice's tap, bob's two, carol's; then bob's second tap's retries.
  const out = runJob(ns, {
    op: 'create-many', names: ['xkvmalice', 'xkvmbob1', ...taken.slice(0, 1), 'xkvmcarol', ...taken.slice(1)],
    jobs: [{ bridges: ['br0'], owner: ALICE }, { bridges: ['br0', 'br1'], owner: BOB }, { bridges: ['br1'], owner: CAROL }],
  });
  const [a, b, c] = value<Outcome[]>(out);
  assert.equal(nicsOf(a).map((n) => n.tap), ['xkvmalice']);
  assert.equal(nicsOf(c).map((n) => n.tap), ['xkvmcarol']);
  assert.is(errorOf(b).code, 'SYSTEM_ERROR');
  assert.match(errorOf(b).message, /still no free tap name after 16 collisions/);
  assert.equal(tapsLike(ns, 'xkvm'), ['xkvmalice', 'xkvmcarol', ...taken].sort());
  assert.is(devices(ns).get('xkvmalice')?.master, 'br0');
  assert.is(devices(ns).get('xkvmcarol')?.master, 'br1');
  for (const t of taken) assert.equal(tapOwner(ns, t), { owner: BOB.uid, group: -1 });
  assert.equal(deletions(out).map((d) => d.taps), [['xkvmbob1']], 'exactly bob\'s own tap was deleted');
}));

test('when the name generator gives nothing usable after a collision, only that request fails, and no tap of any request is left behind', withNetns(['br0'], (ns) => {
  ns.ip('tuntap', 'add', 'dev', 'xkvmtaken', 'mode', 'tap', 'user', '4242');
  // bob's second tap collides; then the generator yields only names that are not interface names.
  const out = runJob(ns, {
    op: 'create-many', names: ['xkvmalice', 'xkvmbob1', 'xkvmtaken', ...Array.from({ length: 100 }, () => '-bad')],
    jobs: [{ bridges: ['br0'], owner: ALICE }, { bridges: ['br0', 'br0'], owner: BOB }],
  });
  const [a, b] = value<Outcome[]>(out);
  assert.equal(nicsOf(a).map((n) => n.tap), ['xkvmalice']);
  assert.match(errorOf(b).message, /no usable name/);
  assert.equal(tapsLike(ns, 'xkvm'), ['xkvmalice', 'xkvmtaken']);
  assert.equal(tapOwner(ns, 'xkvmtaken'), { owner: 4242, group: -1 });
}));

test('each tap comes with the ifindex /sys gives it, and beforeCreate hears of every name before the batch that creates it, a collision\'s new name included', withNetns(['br0', 'br1'], (ns) => {
  ns.ip('tuntap', 'add', 'dev', 'xkvmtaken', 'mode', 'tap', 'user', '4242');
  const out = runJob(ns, {
    op: 'create-many', announce: true, names: ['xkvmown1', 'xkvmtaken', 'xkvmown3', 'xkvmown4'],
    jobs: [{ bridges: ['br0'], owner: ALICE }, { bridges: ['nosuchbr'], owner: CAROL }, { bridges: ['br1', 'br0'], owner: BOB }],
  });
  const [a, missing, b] = value<Outcome[]>(out);
  assert.is(errorOf(missing).code, 'NO_SUCH_BRIDGE');
  for (const o of [a, b]) {
    if (o === undefined || 'error' in o) throw new Error(JSON.stringify(o));
    const shown = o.nics.map((n) => (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', n.tap)) as { ifindex: number }[])[0]?.ifindex);
    assert.equal(o.ifindexes, shown);
  }
  // The order of what the layer did: the names, the batch; the new name for the collision, the retry.
  const seen = out.calls.filter((c) => c.file === 'beforeCreate' || c.args.includes('-batch')).map((c) => (c.file === 'beforeCreate' ? `announce ${c.args.join(' ')}` : `batch ${(c.input?.match(/tuntap add dev \S+/g) ?? []).map((l) => l.slice(15)).join(' ')}`));
  assert.equal(seen, [
    'announce 0:0:br0:linux:xkvmown1 2:0:br1:linux:xkvmtaken 2:1:br0:linux:xkvmown3',
    'batch xkvmown1 xkvmtaken xkvmown3',
    // ip stopped at the collision: xkvmown3 was not made either, and is announced again.
    'announce 2:0:br1:linux:xkvmown4 2:1:br0:linux:xkvmown3',
    'batch xkvmown4 xkvmown3',
  ]);
  assert.equal(nicsOf(b).map((n) => n.tap), ['xkvmown4', 'xkvmown3']);
}));

test.run();
