// mac-lock (issue 10, item 4), end to end through the real helper: an ordinary user asks for taps
// with the guest's MAC on bridges under mac-lock and on bridges without it, attaches to each tap
// as its owner and writes frames from the locked MAC and from a spoofed one. A capture on the
// bridge sees the locked MAC and never the spoofed one; on the bridge without mac-lock the spoofed
// one arrives (the control: the capture works). Linux bridge (port locking) and OVS userspace
// bridge (OpenFlow flows); when the session ends, or ovs-cleanup removes the port, nothing the
// lock added is left.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Nic } from '../../../shared/src/protocol/messages.js';
import { startCapture, startFrames } from '../../support/frames.js';
import type { TestUser } from '../../support/netns.js';
import type { Ovs } from '../../support/ovs.js';
import { waitFor } from '../../support/wait.js';
import { assertNics, fail, links, ownRecords, PATIENCE_MS, userBench, type Agent, type Bench } from './support.js';

const LOCKED = '52:54:00:4c:00:01';
const SPOOFED = '52:54:00:5b:00:66';
const OTHER = '52:54:00:4c:00:02';

const fixture = userBench(test, 'ml', ['ovsbr0', 'ovsbr1'], ({ bench, ovs, user }) => {
  for (const br of ['ovsbr0', 'ovsbr1']) bench.ns.ip('link', 'set', 'dev', br, 'up');
  const name = user.name;
  bench.helper.setPolicy(`ovsdb ${ovs.db}\n${['br0', 'br1', 'ovsbr0', 'ovsbr1'].map((br) => `allow ${br} ${name}\n`).join('')}`
    + `mac-lock br0 ${name}\nmac-lock ovsbr0 ${name}\n`);
});
const b = (): Bench => fixture().bench;
const a = (): Agent => fixture().agent;
const o = (): Ovs => fixture().ovs;
const u = (): TestUser => fixture().user;

/** Asks for taps with these MACs on these bridges, in a new session `conn`. */
async function ask(conn: string, nics: readonly { bridge: string; mac: string }[], lifetime: 'session' | 'persistent' = 'session'): Promise<{ pid: number; nics: Nic[] }> {
  const { pid } = await a().open(conn, b().helper.socket);
  const id = b().id();
  const made = assertNics(await a().ask(conn, { v: 1, id, op: 'make-nics', nics, lifetime }), id, nics.map((n) => n.bridge), b().ns, 'make-nics with macs');
  return { pid, nics: made };
}

/**
 * Frames from `macs` (last: the one expected through) into `tap` as its owner; the capture on
 * `bridge` until `arrives` was seen 3 times. Returns the source MACs the capture saw.
 */
async function through(tap: string, bridge: string, macs: readonly string[], arrives: string): Promise<string[]> {
  const capture = await startCapture(b().ns, bridge);
  try {
    const writer = startFrames(b().ns, u(), tap, macs);
    try {
      await waitFor(() => capture.count(arrives) >= 3, PATIENCE_MS, { what: `frames from ${arrives} on ${bridge}`, describe: () => `seen: ${capture.sources().join(', ')}` });
    } finally {
      writer.stop();
    }
    return capture.sources();
  } finally {
    capture.stop();
  }
}

async function endSession(conn: string, pid: number, taps: readonly string[], mark: number): Promise<void> {
  const { helper, ns } = b();
  await a().close(conn);
  await waitFor(() => ownRecords(helper.auditSince(mark), { pids: [pid], taps }).some((r) => r.event === 'session-end'), PATIENCE_MS, { what: 'the session to end' });
  await waitFor(() => (taps.every((t) => !links(ns).includes(t)) ? true : undefined), PATIENCE_MS, { what: 'the session\'s taps to be gone' });
}

function bridgeJson<T>(...args: string[]): T {
  return JSON.parse(b().ns.exec(['/usr/sbin/bridge', '-json', '-details', ...args]).stdout) as T;
}

const flows = (bridge: string): string[] => o().flows(bridge);
const ours = (lines: readonly string[]): string[] => lines.filter((l) => l.includes('cookie=0x786b76'));

test('on a Linux bridge under mac-lock only frames from the locked MAC get in, the owner cannot unlock the port, on a bridge without mac-lock a spoofed source arrives, and the lock goes with the session', async () => {
  const { helper, ns } = b();
  const mark = helper.auditMark();
  const { pid, nics } = await ask('lin', [{ bridge: 'br0', mac: LOCKED }, { bridge: 'br1', mac: OTHER }]);
  const [locked, free] = nics.map((n) => n.tap) as [string, string];
  assert.equal(nics.map((n) => n.mac), [LOCKED, undefined], 'the reply names the locked MAC, and only under mac-lock');
  const [port] = bridgeJson<{ locked?: boolean }[]>('link', 'show', 'dev', locked);
  assert.is(port?.locked, true, `${locked} is a locked bridge port`);
  const entries = bridgeJson<{ mac: string; state?: string }[]>('fdb', 'show', 'dev', locked).filter((e) => e.state === 'static').map((e) => e.mac);
  assert.equal(entries, [LOCKED], 'one static FDB entry, for the locked MAC');

  const unlock = ns.exec(['/usr/sbin/bridge', 'link', 'set', 'dev', locked, 'locked', 'off'], { user: u().name });
  assert.is.not(unlock.status, 0, 'the tap\'s owner could unlock its port');
  assert.is(bridgeJson<{ locked?: boolean }[]>('link', 'show', 'dev', locked)[0]?.locked, true, 'still locked after the owner tried');

  const seenLocked = await through(locked, 'br0', [SPOOFED, LOCKED], LOCKED);
  assert.not.ok(seenLocked.includes(SPOOFED), `a spoofed frame got from ${locked} into br0: ${seenLocked.join(', ')}`);
  const seenFree = await through(free, 'br1', [SPOOFED], SPOOFED);
  assert.ok(seenFree.includes(SPOOFED), 'control: the spoofed frame reaches br1, which has no mac-lock');

  await endSession('lin', pid, nics.map((n) => n.tap), mark);
  const left = bridgeJson<{ mac: string }[]>('fdb', 'show', 'br', 'br0').filter((e) => e.mac === LOCKED);
  assert.equal(left, [], 'no FDB entry for the locked MAC is left');
});

test('on an OVS bridge under mac-lock only frames from the locked MAC get in, through two flows of its own; on a bridge without mac-lock a spoofed source arrives; the flows go with the session', async () => {
  const { helper } = b();
  const mark = helper.auditMark();
  const before = flows('ovsbr0');
  const { pid, nics } = await ask('ovs', [{ bridge: 'ovsbr0', mac: LOCKED }, { bridge: 'ovsbr1', mac: OTHER }]);
  const [locked, free] = nics.map((n) => n.tap) as [string, string];
  assert.equal(nics.map((n) => n.mac), [LOCKED, undefined], 'the reply names the locked MAC, and only under mac-lock');
  const added = ours(flows('ovsbr0'));
  assert.is(added.length, 2, `two mac-lock flows on ovsbr0: ${added.join(' | ')}`);
  assert.ok(added.some((f) => f.includes(`dl_src=${LOCKED}`) && f.includes('actions=NORMAL')), 'the locked MAC goes to NORMAL');
  assert.ok(added.some((f) => f.includes('actions=drop')), 'everything else from the port is dropped');
  assert.equal(ours(flows('ovsbr1')), [], 'no flows on the bridge without mac-lock');

  const seenLocked = await through(locked, 'ovsbr0', [SPOOFED, LOCKED], LOCKED);
  assert.not.ok(seenLocked.includes(SPOOFED), `a spoofed frame got from ${locked} into ovsbr0: ${seenLocked.join(', ')}`);
  const seenFree = await through(free, 'ovsbr1', [SPOOFED], SPOOFED);
  assert.ok(seenFree.includes(SPOOFED), 'control: the spoofed frame reaches ovsbr1, which has no mac-lock');

  await endSession('ovs', pid, nics.map((n) => n.tap), mark);
  assert.equal(flows('ovsbr0'), before, 'the flows of ovsbr0 are as before the session');
});

test('ovs-cleanup of a persistent mac-locked port removes its flows with it', async () => {
  const { ns } = b();
  const { nics } = await ask('pers', [{ bridge: 'ovsbr0', mac: LOCKED }], 'persistent');
  const tap = nics[0]?.tap ?? fail('no tap');
  try {
    assert.is(ours(flows('ovsbr0')).length, 2, 'the port has its two flows');
    const id = b().id();
    const next = await a().ask('pers', { v: 1, id, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap }] });
    assert.ok(next.kind === 'reply' && next.reply.ok, `ovs-cleanup: ${JSON.stringify(next)}`);
    assert.not.ok(o().ports('ovsbr0').includes(tap), 'the port is gone');
    assert.equal(ours(flows('ovsbr0')), [], 'its flows are gone with it');
  } finally {
    await a().close('pers');
    if (links(ns).includes(tap)) ns.ip('link', 'del', tap);
  }
});

test('a request without mac on a mac-locked bridge is refused BAD_REQUEST naming mac-lock, and nothing is made', async () => {
  const { helper, ns } = b();
  const before = links(ns);
  await a().open('nomac', helper.socket);
  try {
    const id = b().id();
    const next = await a().ask('nomac', { v: 1, id, op: 'make-nics', nics: [{ bridge: 'br1', mac: OTHER }, { bridge: 'ovsbr0' }] });
    assert.ok(next.kind === 'reply' && !next.reply.ok, `expected a refusal: ${JSON.stringify(next)}`);
    if (next.kind === 'reply' && !next.reply.ok) {
      assert.is(next.reply.error.code, 'BAD_REQUEST');
      assert.match(next.reply.error.message, /mac-lock/);
    }
    assert.equal(links(ns), before, 'no device was made');
  } finally {
    await a().close('nomac');
  }
});

test.run();
