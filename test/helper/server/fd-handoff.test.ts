// Fd handoff through the real helper (issue 11): a client that is not the project's own (Python's
// socket.recvmsg, test/support/fd-client.py) run as an ordinary user in a namespace asks for taps
// with handoff "fd" and gets one fd per queue with the reply, on the reply's first byte. The taps
// are attached (Linux bridge and userspace OVS), with the bridge's MTU, multi-queue, mac-lock and
// VLAN as named taps; not persistent; the helper keeps no fd. They outlive the connection and
// count for max-taps while they exist; closing the fds removes them within 2 s, the OVS port too,
// and the ledger forgets them (the quota frees), also with the helper SIGKILLed first (the next
// helper removes the port). Over --stdio: refused on pipes (BAD_REQUEST saying why), served on a
// socketpair.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Reply } from '../../../shared/src/protocol/messages.js';
import { HELPER_MAIN, makeScratch, startActivatedHelper, startSocketHelper, stop, type Watched } from '../../support/helper-proc.js';
import { findDescendant, isRunning } from '../../support/procs.js';
import { createTestUser, removeTestUser, type Netns, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { waitFor, within } from '../../support/wait.js';
import { closeBench, fail, links, mpFrame, openBench, PATIENCE_MS, type Bench } from './support.js';
import { frame, pyClient, replyOf, type PyClient } from '../../support/fd-client.js';

/** The bound for a closed fd tap (and its OVS port) to be gone. */
const GONE_MS = 2000;
const MAC = '52:54:00:0f:d0:01';

let bench: Bench | undefined;
let user: TestUser | undefined;
let ovs: Ovs | undefined;
const b = (): Bench => bench ?? fail('no bench');
const u = (): TestUser => user ?? fail('no user');
const o = (): Ovs => ovs ?? fail('no ovs');

function policy(extra = ''): string {
  const name = u().name;
  return `ovsdb ${o().db}\nallow br0 root\nallow ovsbr0 root\nallow br0 ${name}\nallow ovsbr0 ${name}\nallow ovsbr1 ${name}\nmax-taps 3 ${name}\nmac-lock br0 ${name}\nmac-lock ovsbr1 ${name}\nvlan ovsbr0 10 ${name}\n${extra}`;
}

test.before(async () => {
  bench = await openBench({ policy: 'allow br0 root\n' });
  bench.ns.ip('link', 'set', 'dev', 'br0', 'mtu', '9000');
  ovs = startOvs(bench.ns, { bridges: ['ovsbr0', 'ovsbr1'] });
  user = createTestUser('fd');
  bench.helper.setPolicy(policy());
});

test.after(async () => {
  ovs?.stop();
  await closeBench(bench);
  if (user !== undefined) removeTestUser(user);
});

function nicsOf(reply: Reply, context: string): { tap: string; bridge: string; mtu?: number; queues?: number; mac?: string; vlan?: number }[] {
  if (!reply.ok || !('nics' in reply)) return fail(`${context}: ${JSON.stringify(reply)}`);
  return reply.nics;
}

function codeOf(reply: Reply): string {
  return reply.ok ? 'ok' : reply.error.code;
}

interface Link {
  master?: string;
  mtu: number;
  linkinfo?: { info_data?: { pi?: boolean; vnet_hdr?: boolean; persist?: boolean; multi_queue?: boolean } };
}

function link(ns: Netns, dev: string): Link {
  const [l] = JSON.parse(ns.ip('-d', '-j', 'link', 'show', 'dev', dev)) as Link[];
  return l ?? fail(`no ${dev}`);
}

/** The helper's open fds that are /dev/net/tun. */
function tunFdsOf(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/net/tun';
    } catch {
      return false;
    }
  });
}

async function gone(ns: Netns, taps: readonly string[], what: string): Promise<void> {
  await waitFor(() => taps.every((t) => !links(ns).includes(t)), GONE_MS, { what, describe: () => links(ns).join(' ') });
}

async function portsGone(taps: readonly string[], what: string, deadlineMs = GONE_MS): Promise<void> {
  await waitFor(() => taps.every((t) => !o().ports('ovsbr0').includes(t)), deadlineMs, { what, describe: () => o().ports('ovsbr0').join(' ') });
}

test('a Python client gets one fd per queue on the reply\'s first byte; the taps are attached with MTU, multi-queue, mac-lock and VLAN, not persistent, and the helper keeps no fd', async () => {
  const { ns, helper } = b();
  const mark = helper.auditMark();
  const id = b().id();
  const client = pyClient(ns, u().name, {
    connect: helper.socket, hold: true, hangUp: true,
    requests: [frame({ v: 1, id, op: 'make-nics', nics: [{ bridge: 'br0', queues: 2, mac: MAC }, { bridge: 'ovsbr0' }], handoff: 'fd' })],
  });
  try {
    const report = await client.report();
    const [answer] = report.replies;
    const nics = nicsOf(replyOf(answer?.frame ?? fail('no reply')), 'make-nics fd');
    const [t0, t1] = nics.map((n) => n.tap);
    assert.equal(nics.map((n) => [n.bridge, n.queues, n.mac, n.vlan]), [['br0', 2, MAC, undefined], ['ovsbr0', undefined, undefined, 10]]);
    assert.equal(answer?.fds.map((f) => [f.at, f.iff, f.target]), [[0, t0, '/dev/net/tun'], [0, t0, '/dev/net/tun'], [0, t1, '/dev/net/tun']],
      'three fds, queue by queue, nic by nic, with the first byte');
    assert.is(report.ctrunc, false);
    const l0 = link(ns, t0!);
    assert.is(l0.master, 'br0');
    assert.is(l0.mtu, 9000, 'the bridge\'s MTU');
    assert.is(l0.linkinfo?.info_data?.persist, false, 'not persistent');
    assert.is(l0.linkinfo?.info_data?.vnet_hdr, true);
    assert.is(l0.linkinfo?.info_data?.multi_queue, true);
    assert.match(ns.exec(['/usr/sbin/bridge', '-d', 'link', 'show', 'dev', t0!]).stdout, /locked on/, 'mac-lock');
    assert.is(link(ns, t1!).linkinfo?.info_data?.persist, false);
    assert.ok(o().ports('ovsbr0').includes(t1!), 'the OVS port');
    assert.is(o().vsctl('get', 'Port', t1!, 'tag').trim(), '10', 'the VLAN');
    assert.equal(tunFdsOf(helper.pid), [], 'the helper holds no tun fd after the reply');
    const made = helper.auditSince(mark).find((r) => r.event === 'request' && r['result'] === 'ok');
    assert.is(made?.['lifetime'], 'fd', 'audited as fd');

    // The connection is gone (hangUp); the taps stay, and count: 2 of max-taps 3.
    const second = pyClient(ns, u().name, { connect: helper.socket, requests: [frame({ v: 1, id: b().id(), op: 'make-nics', bridges: ['ovsbr0', 'ovsbr0'], handoff: 'fd' })] });
    assert.is(codeOf(replyOf((await second.report()).replies[0]?.frame ?? fail('no reply'))), 'QUOTA', 'fd taps count for max-taps');
    await second.end();
    assert.ok(links(ns).includes(t0!) && links(ns).includes(t1!), 'the taps outlive the connection');

    const closedAt = Date.now();
    await client.closeFds();
    await gone(ns, [t0!, t1!], 'the taps to be gone once their fds are closed');
    await portsGone([t1!], 'the OVS port of the closed fd tap to be removed');
    assert.ok(Date.now() - closedAt <= GONE_MS + 500, 'within about 2 s');
    await helper.waitForAudit(mark, 1);
    await waitFor(() => helper.auditSince(mark).some((r) => r.event === 'fd-tap-gone' && r['result'] === 'ok'), PATIENCE_MS, { what: 'the fd-tap-gone record' });

    // The ledger forgot them: three taps fit again.
    const third = pyClient(ns, u().name, { connect: helper.socket, hold: true, hangUp: true, requests: [frame({ v: 1, id: b().id(), op: 'make-nics', bridges: ['ovsbr0', 'ovsbr0', 'ovsbr0'], handoff: 'fd' })] });
    const again = nicsOf(replyOf((await third.report()).replies[0]?.frame ?? fail('no reply')), 'three after the quota freed');
    await third.closeFds();
    await gone(ns, again.map((n) => n.tap), 'the three taps to be gone');
    await portsGone(again.map((n) => n.tap), 'their ports to be removed');
    await third.end();
  } finally {
    await client.end();
  }
});

test('a mac-locked fd tap on OVS gets its lock flows, and they go with its port when its fd is closed', async () => {
  const { ns, helper } = b();
  const ours = (): string[] => o().flows('ovsbr1').filter((l) => l.includes('cookie=0x786b76'));
  const client = pyClient(ns, u().name, {
    connect: helper.socket, hold: true, hangUp: true,
    requests: [frame({ v: 1, id: b().id(), op: 'make-nics', nics: [{ bridge: 'ovsbr1', mac: MAC }], handoff: 'fd' })],
  });
  try {
    const [nic] = nicsOf(replyOf((await client.report()).replies[0]?.frame ?? fail('no reply')), 'mac-locked fd tap on OVS');
    assert.is(nic?.mac, MAC);
    assert.is(ours().length, 2, 'the port has its two lock flows');
    await client.closeFds();
    await gone(ns, [nic!.tap], 'the tap to be gone');
    await waitFor(() => !o().ports('ovsbr1').includes(nic!.tap) && ours().length === 0, GONE_MS, { what: 'its port and lock flows to go', describe: () => ours().join('\n') });
  } finally {
    await client.end();
  }
});

test('over --stdio, fd handoff on pipes is BAD_REQUEST saying it needs a Unix socket; on a socketpair (as xkvm passes) the fd comes with the reply', async () => {
  const { ns, helper } = b();
  const argv = [process.execPath, HELPER_MAIN, '--stdio', '--config', helper.config, '--state-dir', helper.stateDir];
  const request = (id: number): string => frame({ v: 1, id, op: 'make-nics', bridges: ['br0'], handoff: 'fd' });
  const piped = pyClient(ns, undefined, { spawn: argv, via: 'pipes', hangUp: true, requests: [request(b().id())] });
  const refused = replyOf((await piped.report()).replies[0]?.frame ?? fail('no reply'));
  await piped.end();
  assert.is(codeOf(refused), 'BAD_REQUEST');
  assert.match(refused.ok ? '' : refused.error.message, /fd handoff needs a Unix socket as stdin\/stdout; xkvm passes one end of a socketpair/);

  const paired = pyClient(ns, undefined, { spawn: argv, via: 'socketpair', hold: true, hangUp: true, requests: [request(b().id())] });
  try {
    const report = await paired.report();
    const [tap] = nicsOf(replyOf(report.replies[0]?.frame ?? fail('no reply')), 'stdio on a socketpair').map((n) => n.tap);
    assert.equal(report.replies[0]?.fds.map((f) => [f.at, f.iff]), [[0, tap]]);
    assert.is(link(ns, tap!).master, 'br0');
    // The stdio helper's session ended with its stdin (hangUp): the tap is the fd's.
    assert.ok(links(ns).includes(tap!));
    await paired.closeFds();
    await gone(ns, [tap!], 'the stdio helper\'s fd tap to be gone once its fd is closed');
  } finally {
    await paired.end();
  }
});

test('a client that leaves before its fd reply: the reply is audited undelivered, the helper closes the fds, and the taps and the OVS port are gone', async () => {
  const { ns, helper } = b();
  const mark = helper.auditMark();
  const id = b().id();
  const socket = connect(helper.socket);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.end(mpFrame({ v: 1, id, op: 'make-nics', bridges: ['br0', 'ovsbr0'], handoff: 'fd' }));
  socket.destroy();
  const { value: record } = await waitFor(() => helper.auditSince(mark).find((r) => r.event === 'undelivered'), PATIENCE_MS, { what: 'the undelivered record' });
  const taps = (record['taps'] as { tap: string }[] | undefined)?.map((t) => t.tap) ?? fail(`no taps in ${JSON.stringify(record)}`);
  assert.is(taps.length, 2);
  assert.is(record['result'], 'error');
  await gone(ns, taps, 'the undelivered taps to be gone');
  await portsGone([taps[1]!], 'the undelivered tap\'s OVS port to be removed');
  assert.equal(tunFdsOf(helper.pid), [], 'the helper holds no tun fd');
});

test('a socket-activated helper exits when idle while qemu-like holders keep fd taps, its link watcher with it; the taps die with their fds, and the next helper removes the OVS port left behind', async () => {
  const { ns } = b();
  const scratch = makeScratch('fdact');
  let helper: Watched | undefined;
  let next: Watched | undefined;
  const client = (): PyClient => pyClient(ns, u().name, {
    connect: scratch.socket, hold: true, hangUp: true,
    requests: [frame({ v: 1, id: b().id(), op: 'make-nics', bridges: ['ovsbr0'], handoff: 'fd' })],
  });
  let holder: PyClient | undefined;
  try {
    const config = scratch.policy([`ovsdb ${o().db}`, `allow ovsbr0 ${u().name}`]);
    helper = await startActivatedHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket, idleSeconds: 1 });
    holder = client();
    const [tap] = nicsOf(replyOf((await holder.report()).replies[0]?.frame ?? fail('no reply')), 'make-nics fd').map((n) => n.tap);
    const { value: watcher } = await waitFor(() => findDescendant(helper!.pid, (p) => p.comm === 'ip' && readFileSync(`/proc/${p.pid}/cmdline`, 'latin1').includes('monitor')), PATIENCE_MS,
      { what: 'the helper\'s link watcher' });
    const exit = await within(helper.exited, PATIENCE_MS, 'the helper to exit idle while the fd tap is held');
    assert.is(exit.code, 0, helper.stderr());
    assert.ok(links(ns).includes(tap!), 'the tap lives on with its fd');
    await waitFor(() => !isRunning(watcher.pid), PATIENCE_MS, { what: 'the link watcher to end with the helper' });
    await holder.closeFds();
    await gone(ns, [tap!], 'the tap to die with its fd while no helper runs');
    assert.ok(o().ports('ovsbr0').includes(tap!), 'its OVS port record stays while no helper runs');
    await stop(helper);
    const again = join(scratch.dir, 'h2.sock');
    next = await startActivatedHelper(ns, { config, stateDir: scratch.state, socket: again, idleSeconds: 1 });
    const poke = pyClient(ns, u().name, { connect: again, hangUp: true, requests: [] });
    await poke.report();
    await poke.end();
    await portsGone([tap!], 'the next helper to remove the port at start', PATIENCE_MS);
  } finally {
    await holder?.end();
    if (helper !== undefined) await stop(helper);
    if (next !== undefined) await stop(next);
    scratch.remove();
  }
});

test('with the helper SIGKILLed while the client holds the fds: the tap stays while held, is gone within 2 s of the close, and the next helper removes its OVS port and forgets it', async () => {
  const { ns, helper } = b();
  const client = pyClient(ns, u().name, {
    connect: helper.socket, hold: true, hangUp: true,
    requests: [frame({ v: 1, id: b().id(), op: 'make-nics', nics: [{ bridge: 'br0', mac: MAC }, { bridge: 'ovsbr0' }], handoff: 'fd' })],
  });
  let next: Watched | undefined;
  try {
    const nics = nicsOf(replyOf((await client.report()).replies[0]?.frame ?? fail('no reply')), 'make-nics fd');
    const taps = nics.map((n) => n.tap);
    const watcher = findDescendant(helper.pid, (p) => p.comm === 'ip' && readFileSync(`/proc/${p.pid}/cmdline`, 'latin1').includes('monitor')) ?? fail('no link watcher');
    process.kill(helper.pid, 'SIGKILL');
    await waitFor(() => !helper.alive(), PATIENCE_MS, { what: 'the helper to die' });
    // The watcher ends with the helper (net/linkwatch.test.ts shows it is not just its next line, in a quiet namespace).
    await waitFor(() => !isRunning(watcher.pid), PATIENCE_MS, { what: 'the link watcher to end with the SIGKILLed helper' });
    assert.ok(taps.every((t) => links(ns).includes(t)), 'held: still there');
    await client.closeFds();
    await gone(ns, taps, 'the taps to be gone with no helper running');
    assert.ok(o().ports('ovsbr0').includes(taps[1]!), 'no helper ran: the OVS port record is still there');
    next = await startSocketHelper(ns, { config: helper.config, stateDir: helper.stateDir, socket: join(helper.dir, 'next.sock') });
    await portsGone([taps[1]!], 'the next helper to remove the port of the fd tap that died meanwhile', PATIENCE_MS);
    await next.audit((r) => r.event === 'fd-tap-gone' && r['result'] === 'ok', PATIENCE_MS, 'the next helper\'s fd-tap-gone record');
  } finally {
    await client.end();
    if (next !== undefined) await stop(next);
  }
});

test.run();
