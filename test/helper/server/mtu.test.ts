// Each tap gets its bridge's MTU, through the real helper: an ordinary user's make-nics on a
// Linux bridge with MTU 9000, a default one (1500) and an OVS userspace bridge with MTU 9000. The
// reply (read by the client's own parseReply) says each tap's mtu, and `ip -j link show` agrees.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Netns } from '../../support/netns.js';
import { waitFor } from '../../support/wait.js';
import { assertNics, fail, links, makeNicsRequest, ownRecords, PATIENCE_MS, userBench, type Agent, type Bench } from './support.js';

const fixture = userBench(test, 'm', ['ovsbr0'], ({ bench, ovs, user }) => {
  bench.ns.ip('link', 'set', 'dev', 'br0', 'mtu', '9000');
  ovs.vsctl('set', 'Interface', 'ovsbr0', 'mtu_request=9000');
  bench.helper.setPolicy(`ovsdb ${ovs.db}\n${['br0', 'br1', 'ovsbr0'].map((br) => `allow ${br} ${user.name}\n`).join('')}`);
});
const b = (): Bench => fixture().bench;
const a = (): Agent => fixture().agent;

function mtu(ns: Netns, dev: string): number {
  const [link] = JSON.parse(ns.ip('-j', 'link', 'show', 'dev', dev)) as { mtu: number }[];
  return link?.mtu ?? fail(`no device ${dev}`);
}

test('a user\'s make-nics reply gives each tap its bridge\'s MTU: 9000 on a Linux and an OVS bridge, 1500 on a default one', async () => {
  const { helper, ns } = b();
  const mark = helper.auditMark();
  const { pid } = await a().open('c1', helper.socket);
  const bridges = ['br0', 'br1', 'ovsbr0'];
  const id = b().id();
  const nics = assertNics(await a().ask('c1', makeNicsRequest(id, bridges)), id, bridges, ns, 'make-nics');
  try {
    assert.equal(nics.map((n) => [n.bridge, n.mtu]), [['br0', 9000], ['br1', 1500], ['ovsbr0', 9000]], 'the reply\'s mtu');
    assert.equal(nics.map((n) => mtu(ns, n.tap)), [9000, 1500, 9000], 'ip -j link show');
    assert.is(mtu(ns, 'br0'), 9000);
    assert.is(mtu(ns, 'br1'), 1500);
    assert.is(mtu(ns, 'ovsbr0'), 9000);
  } finally {
    await a().close('c1');
  }
  const taps = nics.map((n) => n.tap);
  await waitFor(() => ownRecords(helper.auditSince(mark), { pids: [pid], taps }).some((r) => r.event === 'session-end'), PATIENCE_MS,
    { what: 'the session to end' });
  await waitFor(() => (taps.every((t) => !links(ns).includes(t)) ? true : undefined), PATIENCE_MS, { what: 'the session\'s taps to be gone' });
});

/** The tap's tun_flags as /sys shows them in the namespace (IFF_MULTI_QUEUE is 0x0100). */
function tunFlags(ns: Netns, tap: string): number {
  return Number(ns.exec(['/usr/bin/cat', `/sys/class/net/${tap}/tun_flags`]).stdout.trim());
}

test('a user who asks for queues within max-queues gets a multi-queue tap, and the reply says how many; one queue stays a plain tap', async () => {
  const { helper, ns } = b();
  const mark = helper.auditMark();
  const { pid } = await a().open('c2', helper.socket);
  const id = b().id();
  const request = { v: 1, id, op: 'make-nics', nics: [{ bridge: 'br0', queues: 4 }, { bridge: 'br1', queues: 1 }], lifetime: 'session' };
  const nics = assertNics(await a().ask('c2', request), id, ['br0', 'br1'], ns, 'make-nics with queues');
  try {
    assert.equal(nics.map((n) => n.queues), [4, undefined], 'the reply\'s queues');
    const [multi, plain] = nics.map((n) => tunFlags(ns, n.tap));
    assert.ok(((multi ?? 0) & 0x0100) !== 0, `${nics[0]?.tap} has IFF_MULTI_QUEUE (tun_flags ${multi})`);
    assert.ok(((plain ?? 0) & 0x0100) === 0, `${nics[1]?.tap} is a plain tap (tun_flags ${plain})`);
  } finally {
    await a().close('c2');
  }
  const taps = nics.map((n) => n.tap);
  await waitFor(() => ownRecords(helper.auditSince(mark), { pids: [pid], taps }).some((r) => r.event === 'session-end'), PATIENCE_MS,
    { what: 'the session to end' });
  await waitFor(() => (taps.every((t) => !links(ns).includes(t)) ? true : undefined), PATIENCE_MS, { what: 'the session\'s taps to be gone' });
});

test.run();
