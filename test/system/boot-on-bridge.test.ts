/**
 * An ordinary user boots a VM on a bridge, for real: a socket-activated helper
 * (systemd-socket-activate) in a network namespace, the real client as the user, qemu under TCG
 * booting its iPXE ROM, and tcpdump on the bridge seeing the guest's DHCP requests from the MAC
 * the user asked for. That proves the MAC, the tap, the bridge and qemu all worked. Then the
 * client is stopped (SIGTERM, SIGKILL) and the taps (and OVS ports) must be gone within 2 s.
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from '../support/netns.js';
import { startOvs, type Ovs } from '../support/ovs.js';
import { REPO_ROOT } from '../support/reference.js';
import { tunDevices } from '../support/taps.js';
import { waitFor } from '../support/wait.js';

const CLIENT = join(REPO_ROOT, 'dist', 'bin', 'xkvm.cjs');
const HELPER = join(REPO_ROOT, 'dist', 'helper', 'src', 'main.js');
const ACTIVATE = '/usr/bin/systemd-socket-activate';
const TCPDUMP = '/usr/bin/tcpdump';

let ns: Netns;
let ovs: Ovs;
let user: TestUser;
let dir: string;
let sock: string;
let activator: ChildProcess;

function output(child: ChildProcess): { text: () => string } {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => { text += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { text += d.toString(); });
  return { text: () => text };
}

test.before(async () => {
  for (const tool of [ACTIVATE, TCPDUMP, '/usr/bin/qemu-system-x86_64']) {
    if (!existsSync(tool)) throw new Error(`the boot test needs ${tool}: run .ci/setup`);
  }
  user = createTestUser('boot');
  ns = createNetns({ bridges: ['br0'] });
  ovs = startOvs(ns, { bridges: ['ovsbr0'] });
  ns.ip('link', 'set', 'ovsbr0', 'up'); // its internal port, where tcpdump listens
  dir = mkdtempSync('/tmp/xkvm-boot-');
  chmodSync(dir, 0o755);
  const conf = join(dir, 'helper.conf');
  writeFileSync(conf, `allow br0 ${user.name}\nallow ovsbr0 ${user.name}\novsdb ${ovs.db}\n`, { mode: 0o644 });
  sock = join(dir, 'helper.sock');
  activator = ns.spawn([ACTIVATE, '-l', sock, process.execPath, HELPER, '--config', conf, '--state-dir', join(dir, 'state'), '--idle-timeout', '30']);
  await waitFor(() => existsSync(sock), 10_000, { what: 'the activation socket' });
  chmodSync(sock, 0o666); // who may connect is the policy's business
});

test.after(() => {
  activator?.kill('SIGTERM');
  ovs?.stop();
  ns?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (user !== undefined) removeTestUser(user);
});

function userTaps(): string[] {
  return [...tunDevices(ns).values()].filter((t) => t.owner === user.name || t.owner === String(user.uid)).map((t) => t.name);
}

/** The client's own node process (the spawned child is ip netns exec → runuser → node). */
function clientPid(marker: string): number {
  const out = execFileSync('/usr/bin/pgrep', ['-u', String(user.uid), '-f', `${CLIENT} .*${marker}`], { encoding: 'utf8' });
  const pid = Number(out.trim().split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no client process for ${marker}`);
  return pid;
}

async function bootAndStop(bridge: string, macTail: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const mac = `52:54:00:12:34:${macTail}`;
  const capture = ns.spawn([TCPDUMP, '-i', bridge, '-n', '-e', '-l', 'udp port 67']);
  const captured = output(capture);
  await waitFor(() => captured.text().includes('listening on'), 10_000, { what: 'tcpdump to listen' });
  const marker = `xkvm-boot-${bridge}-${signal}`;
  const client = ns.spawn([process.execPath, CLIENT, '--netdev', `${bridge},macaddr=:${macTail}`, '--', '-m', '128', '-boot', 'n', '-nographic', '-name', marker], {
    user: user.name, openTun: true, cwd: dir, env: { XKVM_HELPER_SOCKET: sock, HOME: dir, XDG_CACHE_HOME: join(dir, `cache-${user.name}`) },
  });
  const console_ = output(client);
  const exited = new Promise<number | null>((resolve) => client.on('close', (code) => resolve(code)));
  try {
    // The guest's firmware asks for an address: seen on the bridge, from the MAC asked for.
    await waitFor(() => captured.text().split('\n').some((l) => l.includes(mac) && /BOOTP\/DHCP, Request/.test(l)), 90_000,
      { what: `a DHCP request from ${mac} on ${bridge}`, describe: () => `capture: ${captured.text().slice(-300)} client: ${console_.text().slice(-300)}` });
    // The console reaches the user through the pty.
    assert.match(console_.text(), 'iPXE');
    const taps = userTaps();
    assert.is(taps.length, 1, `one tap owned by ${user.name}: ${taps.join(' ')}`);
    const tap = taps[0]!;
    if (bridge === 'br0') assert.is(tunDevices(ns).get(tap)?.master, 'br0');
    else assert.ok(ovs.vsctl('list-ports', bridge).split('\n').includes(tap), 'the tap is a port of the OVS bridge');
    assert.ok(tunDevices(ns).get(tap)?.attached, 'qemu holds the tap');

    process.kill(clientPid(marker), signal);
    const status = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    if (signal === 'SIGTERM') assert.is(status, 143, 'the client exits 128+15 after stopping qemu');
    const stopped = Date.now();
    await waitFor(() => userTaps().length === 0, 2_000, { since: stopped, what: 'the taps to be gone', describe: () => userTaps().join(' ') });
    if (bridge !== 'br0') await waitFor(() => ovs.vsctl('list-ports', bridge).trim() === '', 2_000, { since: stopped, what: 'the OVS port to be gone' });
    await waitFor(() => {
      try {
        execFileSync('/usr/bin/pgrep', ['-f', `qemu-system.*${marker}`]);
        return false;
      } catch {
        return true;
      }
    }, 5_000, { what: 'qemu to end' });
  } finally {
    capture.kill('SIGTERM');
    client.kill('SIGKILL');
  }
}

test('a VM on a Linux bridge: DHCP from the MAC asked for, console relayed, SIGTERM stops it and its tap is gone within 2 s', async () => {
  await bootAndStop('br0', '05', 'SIGTERM');
});

test('SIGKILL to the client ends qemu (the pty hangs up) and the helper removes the tap within 2 s', async () => {
  await bootAndStop('br0', '07', 'SIGKILL');
});

test('a VM on an Open vSwitch bridge: DHCP seen on the bridge, and after SIGTERM the tap and its port are gone within 2 s', async () => {
  await bootAndStop('ovsbr0', '06', 'SIGTERM');
});

test.run();
