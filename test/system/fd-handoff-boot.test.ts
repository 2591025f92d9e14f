/**
 * The client's fd handoff, for real (issue 11, item 2): an ordinary user runs `xkvm -v --netdev
 * br0,...` against a helper on a socket in a network namespace; the client asks for its tap by fd
 * handoff (the default), qemu (TCG) inherits the tap as `-netdev tap,fd=N`, boots its iPXE ROM,
 * and tcpdump on br0 sees the guest's DHCP request from the MAC asked for. The tap is the user's,
 * attached to br0 and not persistent. Then client, qemu and helper are SIGKILLed together, and
 * no tap is left in the namespace within 2 s: the kernel removed it with its last fd. And the
 * escape hatch: XKVM_HANDOFF=name gives qemu a named session tap (`ifname=`), as before.
 * Modelled on boot-on-bridge.test.ts; it installs nothing outside its namespace and /tmp.
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeScratch, startSocketHelper, startXkvm, stop, watch, type Scratch, type Watched } from '../support/helper-proc.js';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from '../support/netns.js';
import { REPO_ROOT } from '../support/reference.js';
import { tunDevices } from '../support/taps.js';
import { waitFor, within } from '../support/wait.js';

const CLIENT = join(REPO_ROOT, 'dist', 'bin', 'xkvm.cjs');
const TCPDUMP = '/usr/bin/tcpdump';
const MAC = '52:54:00:12:34:61';

let ns: Netns;
let user: TestUser;
let scratch: Scratch;
let conf: string;
let env: Record<string, string>;

test.before(() => {
  for (const tool of [TCPDUMP, '/usr/bin/qemu-system-x86_64']) {
    if (!existsSync(tool)) throw new Error(`the fd handoff boot test needs ${tool}: run .ci/setup`);
  }
  user = createTestUser('fdboot');
  ns = createNetns({ bridges: ['br0'] });
  scratch = makeScratch('fdboot');
  conf = scratch.policy([`allow br0 ${user.name}`]);
  env = { XKVM_HELPER_SOCKET: scratch.socket, HOME: scratch.dir, XDG_CACHE_HOME: join(scratch.dir, 'cache') };
});

test.after(() => {
  ns?.destroy();
  scratch?.remove();
  if (user !== undefined) removeTestUser(user);
});

function pgrep(args: string[]): number | undefined {
  try {
    const pid = Number(execFileSync('/usr/bin/pgrep', args, { encoding: 'utf8' }).trim().split('\n')[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined; // none
  }
}

const clientPid = (marker: string): number | undefined => pgrep(['-u', String(user.uid), '-f', `${CLIENT} .*${marker}`]);
const qemuPid = (marker: string): number | undefined => pgrep(['-u', String(user.uid), '-f', `qemu-system.*${marker}`]);

async function helper(): Promise<Watched> {
  const h = await startSocketHelper(ns, { config: conf, stateDir: scratch.state, socket: scratch.socket });
  execFileSync('/usr/bin/chmod', ['0666', scratch.socket]);
  return h;
}

test('a VM through the socket gets its tap by fd handoff (fd=N, no ifname): DHCP from its MAC on br0; the tap is the user\'s, on br0, not persistent; SIGKILL of client, qemu and helper together leaves no tap within 2 s', async () => {
  const h = await helper();
  const capture = watch(ns.spawn([TCPDUMP, '-i', 'br0', '-n', '-e', '-l', 'udp port 67']));
  const marker = 'xkvm-fd-boot';
  const client = startXkvm(ns, user.name, ['-v', '--netdev', `br0,mac=${MAC}`, '--', '-m', '128', '-boot', 'n', '-nographic', '-name', marker], env);
  try {
    await waitFor(() => capture.stderr().includes('listening on'), 10_000, { what: 'tcpdump to listen' });
    await waitFor(() => capture.stdout().split('\n').some((l) => l.includes(MAC) && /BOOTP\/DHCP, Request/.test(l)) || client.exit() !== undefined, 120_000,
      { what: `a DHCP request from ${MAC} on br0`, describe: () => `capture: ${capture.stdout().slice(-300)} client: ${client.stderr().slice(-600)}` });
    assert.is(client.exit(), undefined, `the client ended: ${client.stderr().slice(-600)}`);
    assert.match(client.stdout(), 'iPXE');
    assert.match(client.stderr(), /-netdev type=tap,id=net00,fd=\d+ /, 'qemu is given the tap as an fd (-v shows its argv)');
    assert.not.match(client.stderr(), /ifname=|script=no/);
    const taps = [...tunDevices(ns).values()];
    assert.is(taps.length, 1, `one tap: ${JSON.stringify(taps)}`);
    const tap = taps[0]!;
    assert.ok(tap.owner === user.name || tap.owner === String(user.uid), `the user's: ${tap.owner}`);
    assert.is(tap.master, 'br0');
    assert.is(tap.persist, false, 'not persistent: it dies with its last fd');
    assert.ok(tap.attached, 'qemu holds it');

    const pids = [clientPid(marker), qemuPid(marker), h.pid];
    assert.ok(pids.every((p) => p !== undefined), `client, qemu and helper: ${pids.join(' ')}`);
    const killed = Date.now();
    for (const pid of pids) process.kill(pid!, 'SIGKILL');
    await waitFor(() => tunDevices(ns).size === 0, 2_000, { since: killed, what: 'no tap at all in the namespace', describe: () => [...tunDevices(ns).keys()].join(' ') });
  } finally {
    capture.kill('SIGTERM');
    const c = clientPid(marker);
    if (c !== undefined) process.kill(c, 'SIGKILL');
    const q = qemuPid(marker);
    if (q !== undefined) process.kill(q, 'SIGKILL');
    client.kill('SIGKILL');
    await stop(h);
  }
});

test('XKVM_HANDOFF=name keeps named session taps: qemu gets ifname=, and the helper removes the tap when the client is stopped; another value is refused before anything is made', async () => {
  const h = await helper();
  const marker = 'xkvm-name-boot';
  const client = startXkvm(ns, user.name, ['-v', '--netdev', 'br0', '--', '-m', '128', '-boot', 'n', '-nographic', '-name', marker], { ...env, XKVM_HANDOFF: 'name' });
  try {
    const { value: tap } = await waitFor(() => [...tunDevices(ns).values()].find((t) => t.attached) ?? (client.exit() === undefined ? undefined : false), 60_000,
      { what: 'qemu to hold a tap', describe: () => client.stderr().slice(-600) });
    assert.ok(tap !== false, `the client ended: ${client.stderr().slice(-600)}`);
    assert.match(client.stderr(), new RegExp(`-netdev type=tap,id=net00,script=no,downscript=no,ifname=${tap.name} `));
    assert.is(tap.persist, true, 'a named tap, as before');
    const pid = clientPid(marker);
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGTERM');
    assert.is((await within(client.exited, 30_000, 'the client to exit')).code, 143);
    await waitFor(() => tunDevices(ns).size === 0, 10_000, { what: 'the tap to be gone' });

    const bad = startXkvm(ns, user.name, ['--netdev', 'br0', '--', '-m', '128'], { ...env, XKVM_HANDOFF: 'fds' });
    const exit = await within(bad.exited, 30_000, 'the client to refuse');
    assert.is(exit.code, 1);
    assert.match(bad.stderr(), /^xkvm: XKVM_HANDOFF must be 'fd' .* or 'name' .*, got 'fds'$/m);
    assert.is(tunDevices(ns).size, 0);
  } finally {
    const pid = clientPid(marker);
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    client.kill('SIGKILL');
    await stop(h);
  }
});

test.run();
