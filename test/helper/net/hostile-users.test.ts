// The network layer against ordinary users, through the real helper (issue 9, items 6, 9 and 11):
// a socket helper in a network namespace, callers that are real unprivileged users (agent.ts, run
// by runuser), real taps, bridges and a userspace Open vSwitch.
//
// - A bridge renamed and another made under its name (by the admin, between two requests on one
//   connection): the helper's long-lived ip had resolved the name before; the second tap must end
//   on the device called br0 now, as the reply and the audit say, never on the old one.
// - OVS fake (VLAN) bridges: a session tap's port is removed when the session ends (the record
//   says ok only then), and ovs-cleanup of one's own port on a fake bridge works.
// - Sessions ending together: their taps are deleted through the helper's interface group (one
//   `link del group` for many), and a tap its owner deleted first does not stop the others.
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createTestUser, removeTestUser, TOOLS, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';
import type { AuditEntry } from '../../support/helper-process.js';
import type { Nic } from '../../../shared/src/protocol/messages.js';
import { Agent, assertNics, closeBench, fail, links, makeNicsRequest, openBench, type Bench } from '../server/support.js';

let bench: Bench | undefined;
let ovs: Ovs | undefined;
let users: TestUser[] = [];
const agents: Agent[] = [];

const b = (): Bench => bench ?? fail('no bench');
const o = (): Ovs => ovs ?? fail('no OVS');

test.before(async () => {
  users = [createTestUser('a'), createTestUser('b')];
  bench = await openBench({ bridges: ['br0'], policy: 'allow br0 root\n' });
  ovs = startOvs(bench.ns, { bridges: ['ovsbr0'] });
  // a fake (VLAN) bridge: a port of ovsbr0 with tag 42 that ovs-vsctl shows as a bridge
  ovs.vsctl('add-br', 'fake0', 'ovsbr0', '42');
  const names = users.map((u) => u.name).join(' ');
  bench.helper.setPolicy(`ovsdb ${ovs.db}\nallow br0 ${names}\nallow fake0 ${names}\nmax-taps 64 ${names}\n`);
  for (const user of users) agents.push(Agent.start(bench.ns, user));
});

test.after(async () => {
  for (const agent of agents) await agent.stop();
  ovs?.stop();
  await closeBench(bench);
  for (const user of users) removeTestUser(user);
});

const alice = (): Agent => agents[0] ?? fail('no agent');
const bob = (): Agent => agents[1] ?? fail('no agent');

/** The session-end record of the session that held `taps` (waits for it). */
async function sessionEnd(mark: number, taps: readonly string[]): Promise<AuditEntry> {
  const { helper } = b();
  const { value } = await waitFor(() => helper.auditSince(mark).find((r) => r.event === 'session-end'
    && (r['taps'] as { tap: string }[] | undefined)?.some((t) => taps.includes(t.tap))), PATIENCE_MS,
  { what: `the session of ${taps.join(' ')} to end`, describe: () => JSON.stringify(helper.auditSince(mark)) });
  return value;
}

/** The ifindex of a device in the namespace, from its /sys. */
function ifindex(name: string): number {
  const r = b().ns.exec(['/usr/bin/cat', `/sys/class/net/${name}/ifindex`]);
  if (r.status !== 0) throw new Error(`no device ${name}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** The devices attached to `bridge`, by name. */
function portsOf(bridge: string): string[] {
  const list = JSON.parse(b().ns.ip('-j', 'link', 'show', 'master', bridge)) as { ifname: string }[];
  return list.map((d) => d.ifname).sort();
}

/** The OVS bridge a port is on (port-to-br), or undefined when there is no such port. */
function portBridge(tap: string): string | undefined {
  const found = o().vsctl('--if-exists', '--columns=name', '--bare', 'list', 'Port', tap).trim();
  return found === '' ? undefined : o().vsctl('port-to-br', tap).trim();
}

test('a bridge renamed and replaced by the admin between two requests: the second tap is on the new br0, as the reply and the audit say, never on the old one', async () => {
  const { helper, ns } = b();
  await alice().open('rename', helper.socket);
  const mark = helper.auditMark();
  try {
    const id1 = b().id();
    const [first] = assertNics(await alice().ask('rename', makeNicsRequest(id1, ['br0'])), id1, ['br0'], ns, 'before the rename');
    const old = ifindex('br0');
    // the admin renames the bridge and makes another under its name
    ns.ip('link', 'set', 'br0', 'name', 'br0old');
    ns.ip('link', 'add', 'br0', 'type', 'bridge');
    const id2 = b().id();
    const [second] = assertNics(await alice().ask('rename', makeNicsRequest(id2, ['br0'])), id2, ['br0'], ns, 'after the rename');
    assert.ok(first !== undefined && second !== undefined);
    assert.is.not(ifindex('br0'), old);
    assert.equal(portsOf('br0old'), [first!.tap], 'only the tap made before the rename is on the old bridge');
    assert.equal(portsOf('br0'), [second!.tap], 'the tap made after it is on the device called br0 now');
    const record = helper.auditSince(mark).find((r) => (r['request'] as { id?: number } | undefined)?.id === id2);
    const audited = (record?.['taps'] as { bridge: string; tap: string }[] | undefined)?.map((t) => [t.bridge, t.tap]);
    assert.equal(audited, [['br0', second!.tap]], 'the audit names the bridge the tap is on');
  } finally {
    await alice().close('rename');
    ns.ip('link', 'del', 'br0old');
  }
});

test('a session tap on an OVS fake (VLAN) bridge loses its port, and then its tap, when the session ends, and only then is the end recorded ok', async () => {
  const { helper, ns } = b();
  await alice().open('fake', helper.socket);
  const mark = helper.auditMark();
  const id = b().id();
  const nics: Nic[] = assertNics(await alice().ask('fake', makeNicsRequest(id, ['fake0', 'fake0'])), id, ['fake0', 'fake0'], ns, 'make-nics on fake0');
  const tap = nics[0]!.tap;
  assert.is(nics[0]!.type, 'ovs');
  assert.is(portBridge(tap), 'fake0');
  assert.is(o().vsctl('get', 'Port', tap, 'tag').trim(), '42');
  await alice().close('fake');
  const end = await sessionEnd(mark, [tap]);
  assert.is(end['result'], 'ok', `the session end: ${JSON.stringify(end)}`);
  assert.is(portBridge(tap), undefined, 'the port on the fake bridge is gone');
  assert.equal(o().ports('fake0'), [], 'the fake bridge has no port left');
  assert.is(o().vsctl('--bare', '--columns=name', 'find', 'Port', `external_ids:xkvm-owner=${alice().user.uid}`).trim(), '',
    'no port of the user is left anywhere');
  const now = links(ns);
  assert.equal(nics.filter((n) => now.includes(n.tap)), [], 'the taps are gone');
});

test('ovs-cleanup of one\'s own port on a fake bridge removes it; another user\'s is refused', async () => {
  const { helper, ns } = b();
  await alice().open('cleanup', helper.socket);
  await bob().open('cleanup', helper.socket);
  const id = b().id();
  const [nic] = assertNics(await alice().ask('cleanup', makeNicsRequest(id, ['fake0'], 'persistent')), id, ['fake0'], ns, 'a persistent tap on fake0');
  const tap = nic!.tap;
  try {
    const theirs = b().id();
    const refused = await bob().ask('cleanup', { v: 1, id: theirs, op: 'ovs-cleanup', ports: [{ bridge: 'fake0', tap }] });
    assert.ok(refused.kind === 'reply' && !refused.reply.ok && refused.reply.error.code === 'NOT_OWNER', `bob: ${JSON.stringify(refused)}`);
    assert.is(portBridge(tap), 'fake0');
    const mine = b().id();
    const removed = await alice().ask('cleanup', { v: 1, id: mine, op: 'ovs-cleanup', ports: [{ bridge: 'fake0', tap }] });
    assert.equal(removed, { kind: 'reply', reply: { v: 1, id: mine, ok: true, removed: [{ bridge: 'fake0', tap }] } });
    assert.is(portBridge(tap), undefined, 'the port is gone');
    assert.ok(links(ns).includes(tap), 'like the reference, the tap itself stays');
  } finally {
    await alice().close('cleanup');
    await bob().close('cleanup');
    ns.ip('link', 'del', tap);
  }
});

/** `ip monitor link` in the namespace, from now on. */
function monitor(): { child: ChildProcess; text: () => string } {
  const child = spawn(TOOLS.ip, ['-n', b().ns.name, '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => { text += chunk; });
  return { child, text: () => text };
}

test('sessions ending together have their taps deleted through the helper\'s interface group, and a tap its owner deleted first does not stop the others', async () => {
  const { helper, ns } = b();
  const sessions = [[alice(), 's1'], [alice(), 's2'], [bob(), 's3'], [bob(), 's4']] as const;
  const taps: string[][] = [];
  for (const [agent, conn] of sessions) {
    await agent.open(conn, helper.socket);
    const id = b().id();
    taps.push(assertNics(await agent.ask(conn, makeNicsRequest(id, ['br0', 'br0', 'br0'])), id, ['br0', 'br0', 'br0'], ns, conn).map((n) => n.tap));
  }
  // alice deletes one of her own session taps herself (no privilege needed for that)
  const vanished = taps[1]![1]!;
  const del = ns.exec([TOOLS.ip, 'tuntap', 'del', 'mode', 'tap', 'dev', vanished], { user: alice().user.name, openTun: true });
  assert.is(del.status, 0, `alice deletes her tap: ${del.stderr}`);
  const watch = monitor();
  const mark = helper.auditMark();
  try {
    // wait until the monitor runs: it reports a change made now
    let probe = 0;
    await waitFor(() => {
      ns.ip('tuntap', 'add', 'dev', `monprobe${(probe += 1)}`, 'mode', 'tap');
      return watch.text().includes('monprobe');
    }, PATIENCE_MS, { what: 'ip monitor to start' });
    for (let i = 1; i <= probe; i++) ns.ip('link', 'del', `monprobe${i}`);
    await Promise.all(sessions.map(([agent, conn]) => agent.close(conn)));
    const ends = await Promise.all(taps.map((t) => sessionEnd(mark, t)));
    for (const end of ends) assert.is(end['result'], 'ok', `a session end: ${JSON.stringify(end)}`);
    const now = links(ns);
    assert.equal(taps.flat().filter((t) => now.includes(t)), [], 'every session tap is gone');
    // each tap still there at the end was put in the helper's deletion group before it went
    for (const tap of taps.flat().filter((t) => t !== vanished)) {
      const grouped = new RegExp(`^\\d+: ${tap}: .* group (\\d+)`, 'm').exec(watch.text());
      assert.ok(grouped !== null, `${tap} was never put in a group:\n${watch.text()}`);
      const group = Number(grouped?.[1]);
      assert.ok(group >= 0x7800_0000 && group < 0x7840_0000, `${tap}: group ${group} is not the helper's`);
      assert.match(watch.text(), new RegExp(`^Deleted \\d+: ${tap}:`, 'm'));
    }
  } finally {
    watch.child.kill();
  }
});

test.run();
