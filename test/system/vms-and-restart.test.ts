/**
 * Several users' VMs at once on one bridge, and a helper killed and restarted under them: each
 * guest's DHCP requests are seen on the bridge from its own MAC; after the helper is SIGKILLed
 * the guests keep sending (their taps stay); a new helper on the same state adopts the sessions,
 * and when each client is stopped its tap is gone within 2 s.
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from '../support/netns.js';
import { makeScratch, startSocketHelper, startXkvm, stop, type Scratch, type Watched } from '../support/helper-proc.js';
import { tunDevices } from '../support/taps.js';
import { waitFor, within } from '../support/wait.js';

let ns: Netns;
let scratch: Scratch;
let users: TestUser[];
let capture: ChildProcess;
let captured = '';

function dhcpFrom(mac: string, since = 0): number {
  return captured.slice(since).split('\n').filter((l) => l.includes(mac) && /BOOTP\/DHCP, Request/.test(l)).length;
}

function tapsOf(user: TestUser): string[] {
  return [...tunDevices(ns).values()].filter((t) => t.owner === user.name || t.owner === String(user.uid)).map((t) => t.name);
}

function clientPid(user: TestUser, marker: string): number {
  const out = execFileSync('/usr/bin/pgrep', ['-u', String(user.uid), '-f', `xkvm.cjs .*${marker}`], { encoding: 'utf8' });
  return Number(out.trim().split('\n')[0]);
}

test.before(async () => {
  users = [createTestUser('a'), createTestUser('b')];
  ns = createNetns({ bridges: ['br0'] });
  scratch = makeScratch('vms');
  capture = ns.spawn(['/usr/bin/tcpdump', '-i', 'br0', '-n', '-e', '-l', 'udp port 67']);
  capture.stdout?.on('data', (d: Buffer) => { captured += d.toString(); });
  capture.stderr?.on('data', (d: Buffer) => { captured += d.toString(); });
  await waitFor(() => captured.includes('listening on'), 10_000, { what: 'tcpdump' });
});

test.after(() => {
  capture?.kill('SIGTERM');
  ns?.destroy();
  scratch?.remove();
  for (const user of users ?? []) removeTestUser(user);
});

test("two users' VMs run at once; a helper killed under them leaves them working; a new helper adopts and cleans up", async () => {
  const config = scratch.policy([`allow br0 ${users.map((u) => u.name).join(' ')}`]);
  const paths = { config, stateDir: scratch.state, socket: scratch.socket };
  let helper: Watched = await startSocketHelper(ns, paths);
  const macs = ['52:54:00:12:34:21', '52:54:00:12:34:22'];
  const vms = users.map((u, i) => startXkvm(ns, u.name,
    ['--netdev', `br0,macaddr=:2${i + 1}`, '--', '-m', '128', '-boot', 'n', '-nographic', '-name', `xkvm-vms-${i}`],
    // Named session taps (not fd handoff, the default): adoption by a new helper is what this tests.
    { XKVM_HELPER_SOCKET: scratch.socket, XKVM_HANDOFF: 'name', HOME: scratch.dir, XDG_CACHE_HOME: `${scratch.dir}/cache-${u.name}` }));
  try {
    for (const mac of macs) {
      await waitFor(() => dhcpFrom(mac) > 0, 90_000, { what: `DHCP from ${mac}`, describe: () => captured.slice(-300) });
    }
    users.forEach((u) => assert.is(tapsOf(u).length, 1, `${u.name} holds one tap`));
    assert.is(scratch.records().length, 2, 'two session records');

    // The helper dies; the guests go on (iPXE keeps asking for an address).
    helper.kill('SIGKILL');
    await within(helper.exited, 5000, 'the helper to die');
    const mark = captured.length;
    for (const mac of macs) {
      await waitFor(() => dhcpFrom(mac, mark) > 0, 30_000, { what: `DHCP from ${mac} after the helper died` });
    }
    users.forEach((u) => assert.is(tapsOf(u).length, 1, `${u.name} keeps the tap`));

    // A new helper adopts both live sessions.
    helper = await startSocketHelper(ns, paths);
    await helper.audit((a) => a.event === 'session-adopted', 5000, 'a session to be adopted');
    users.forEach((u) => assert.is(tapsOf(u).length, 1, `${u.name} still has the tap`));

    // Stopping each client removes its tap within 2 s.
    for (const [i, u] of users.entries()) {
      process.kill(clientPid(u, `xkvm-vms-${i}`), 'SIGTERM');
      const exit = await within(vms[i]!.exited, 15_000, `${u.name}'s client to stop`);
      assert.is(exit.code, 143);
      const stopped = Date.now();
      await waitFor(() => tapsOf(u).length === 0, 2000, { since: stopped, what: `${u.name}'s tap to be gone` });
    }
    await waitFor(() => scratch.records().length === 0, 2000, { what: 'the session records to be removed' });
  } finally {
    for (const vm of vms) vm.kill('SIGKILL');
    await stop(helper);
  }
});

test.run();
