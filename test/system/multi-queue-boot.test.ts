/**
 * A multi-queue guest, for real (issue 10, item 2): an ordinary user runs
 * `xkvm --netdev br0,queues=4,mac=...,mq=on,vectors=10 -- -smp 4` against a socket-activated
 * helper in a network namespace whose policy says `max-queues 4` for the user. qemu under TCG
 * opens the multi-queue tap four times (the tap shows 4 attached queues), boots its iPXE ROM, and
 * tcpdump on the bridge sees the guest's DHCP request from the MAC asked for. Asking for more
 * than max-queues is refused with the helper's words, and no tap is left behind. And the
 * client's side of mac-lock: mac=auto netdevs on a locked bridge get MACs of the client's
 * choosing after the helper's refusal, the helper is asked once more with them and locks the
 * taps to them, and the guest's DHCP request from the first gets through the lock.
 * Modelled on boot-on-bridge.test.ts; it installs nothing outside its namespace and /tmp.
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeScratch, runXkvm, startActivatedHelper, startXkvm, watch, type Scratch, type Watched } from '../support/helper-proc.js';
import { formatMacLockRefusal } from '../../shared/src/protocol/mac-lock.js';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from '../support/netns.js';
import { REPO_ROOT } from '../support/reference.js';
import { tunDevices } from '../support/taps.js';
import { waitFor, within } from '../support/wait.js';

const CLIENT = join(REPO_ROOT, 'dist', 'bin', 'xkvm.cjs');
const TCPDUMP = '/usr/bin/tcpdump';
const MAC = '52:54:00:12:34:44';

let ns: Netns;
let user: TestUser;
let scratch: Scratch;
let conf: string;
let activator: Watched;
let env: Record<string, string>;

test.before(async () => {
  for (const tool of [TCPDUMP, '/usr/bin/qemu-system-x86_64']) {
    if (!existsSync(tool)) throw new Error(`the multi-queue boot test needs ${tool}: run .ci/setup`);
  }
  user = createTestUser('mq');
  ns = createNetns({ bridges: ['br0', 'br1'] });
  scratch = makeScratch('mq');
  conf = scratch.policy([`allow br0 ${user.name}`, `max-queues 4 ${user.name}`, `allow br1 ${user.name}`, `mac-lock br1 ${user.name}`]);
  activator = await startActivatedHelper(ns, { config: conf, stateDir: scratch.state, socket: scratch.socket, idleSeconds: 30 });
  env = { XKVM_HELPER_SOCKET: scratch.socket, HOME: scratch.dir, XDG_CACHE_HOME: join(scratch.dir, 'cache') };
});

test.after(() => {
  activator?.kill('SIGTERM');
  ns?.destroy();
  scratch?.remove();
  if (user !== undefined) removeTestUser(user);
});

function userTaps(): string[] {
  return [...tunDevices(ns).values()].filter((t) => t.owner === user.name || t.owner === String(user.uid)).map((t) => t.name);
}

/**
 * The tap's multi-queue flag and how many queues qemu opened: attached plus disabled (qemu
 * disables the queues a guest does not use; iPXE drives one queue pair).
 */
function queuesOf(tap: string): { multiQueue: boolean; opened: number } {
  const [link] = JSON.parse(ns.ip('-d', '-j', 'link', 'show', tap)) as Array<{ linkinfo?: { info_data?: { multi_queue?: boolean; numqueues?: number; numdisabled?: number } } }>;
  const data = link?.linkinfo?.info_data ?? {};
  return { multiQueue: data.multi_queue === true, opened: (data.numqueues ?? 0) + (data.numdisabled ?? 0) };
}

/** The client's own node process (the spawned child is ip netns exec → runuser → node), if it runs. */
function clientPid(marker: string): number | undefined {
  try {
    const pid = Number(execFileSync('/usr/bin/pgrep', ['-u', String(user.uid), '-f', `${CLIENT} .*${marker}`], { encoding: 'utf8' }).trim().split('\n')[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined; // pgrep found none
  }
}

test('a 4-vCPU TCG guest on a 4-queue tap (max-queues 4) boots iPXE and its DHCP request from the MAC asked for is seen on the bridge; the tap goes with the VM', async () => {
  const capture = watch(ns.spawn([TCPDUMP, '-i', 'br0', '-n', '-e', '-l', 'udp port 67']));
  await waitFor(() => capture.stderr().includes('listening on'), 10_000, { what: 'tcpdump to listen' });
  const client = startXkvm(ns, user.name, ['-v', '--netdev', `br0,queues=4,mac=${MAC},mq=on,vectors=10`, '--', '-smp', '4', '-m', '128', '-boot', 'n', '-nographic', '-name', 'xkvm-mq-boot'], env);
  const said = (): string => `${client.stdout()}${client.stderr()}`;
  try {
    // -smp 4 under TCG on two shared cores is slow: a generous deadline, on the condition itself
    // (and no waiting on it once the client has ended: qemu could not start).
    const { value: seen } = await waitFor(() => {
      if (capture.stdout().split('\n').some((l) => l.includes(MAC) && /BOOTP\/DHCP, Request/.test(l))) return 'the request';
      return client.exit() === undefined ? false : 'the client\'s end';
    }, 240_000, { what: `a DHCP request from ${MAC} on br0`, describe: () => `capture: ${capture.stdout().slice(-300)} client: ${said().slice(-600)}` });
    assert.is(seen, 'the request', `the client ended before the guest asked for an address: ${said().slice(-600)}`);
    assert.match(client.stdout(), 'iPXE');
    assert.match(client.stderr(), /,fds=\d+:\d+:\d+:\d+ /, 'qemu is given the 4 queues as 4 fds (-v shows its argv; fd handoff, the default)');
    assert.not.match(client.stderr(), /queues=4/, 'queues= is not given beside fds= (qemu refuses it)');
    const taps = userTaps();
    assert.is(taps.length, 1, `one tap owned by ${user.name}: ${taps.join(' ')}`);
    const tap = taps[0]!;
    assert.is(tunDevices(ns).get(tap)?.master, 'br0');
    assert.equal(queuesOf(tap), { multiQueue: true, opened: 4 }, 'a multi-queue tap whose 4 queues qemu holds');

    const pid = clientPid('xkvm-mq-boot');
    assert.ok(pid !== undefined, 'the client process');
    process.kill(pid, 'SIGTERM');
    const status = await within(client.exited, 30_000, 'the client to exit after SIGTERM');
    assert.is(status.code, 143, 'the client exits 128+15 after stopping qemu');
    await waitFor(() => userTaps().length === 0, 10_000, { what: 'the tap to be gone', describe: () => userTaps().join(' ') });
  } finally {
    capture.kill('SIGTERM');
    const pid = clientPid('xkvm-mq-boot');
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    client.kill('SIGKILL');
  }
});

test('more queues than max-queues is refused with the helper\'s words (QUOTA, naming max-queues and its line), qemu never runs and no tap is left', async () => {
  const r = await runXkvm(ns, user.name, ['--netdev', 'br0,queues=5,mq=on', '--', '-smp', '4', '-m', '128', '-nographic', '-name', 'xkvm-mq-refused'], env);
  assert.is.not(r.code, 0, r.stderr);
  assert.match(r.stderr, `may ask for at most 4 queues a tap (max-queues, ${conf}:2); nics[0] on br0 asks for 5 [QUOTA]`);
  assert.not.match(r.stdout, 'iPXE');
  assert.equal(userTaps(), [], 'no tap left');
});

test('queues beyond 16 are refused by the client itself, in its own words, and no tap is made', async () => {
  const r = await runXkvm(ns, user.name, ['--netdev', 'br0,queues=17'], env);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, "--netdev 'br0,queues=17': queues= must be a whole number from 1 to 16");
  assert.equal(userTaps(), []);
});

test('mac=auto netdevs on a bridge under mac-lock get random 52:54:00 MACs, said with -v; the helper, asked once more with exactly those, locks the taps to them and the guest boots and asks for an address from the first', async () => {
  const mark = activator.audits.length;
  const capture = watch(ns.spawn([TCPDUMP, '-i', 'br1', '-n', '-e', '-l', 'udp port 67']));
  await waitFor(() => capture.stderr().includes('listening on'), 10_000, { what: 'tcpdump to listen' });
  const client = startXkvm(ns, user.name, ['-v', '--netdev', 'br1', '--netdev', 'br0', '--netdev', 'br1', '--', '-m', '128', '-boot', 'n', '-nographic', '-name', 'xkvm-mq-lock'], env);
  try {
    const mine = (a: { event: string; [key: string]: unknown }): boolean =>
      activator.audits.indexOf(a) >= mark && a.event === 'request' && JSON.stringify(a['caller']).includes(`"uid":${user.uid}`);
    const first = await activator.audit((a) => mine(a) && a['code'] === 'BAD_REQUEST', 30_000, 'the mac-lock refusal');
    assert.is(first['message'], formatMacLockRefusal({ user: user.name, missing: [0, 2].map((index) => ({ index, bridge: 'br1', rule: `${conf}:4` })) }));
    const second = await activator.audit((a) => mine(a) && a !== first, 30_000, 'the second request');
    const chosen = (): string[] => [...client.stderr().matchAll(/br1 is under mac-lock for you: mac=auto becomes (52:54:00(?::[0-9a-f]{2}){3})\n/g)].map((m) => m[1]!);
    const { value: said } = await waitFor((): string[] | undefined => (chosen().length === 2 ? chosen() : undefined), 10_000, { what: 'two -v lines', describe: () => client.stderr() });
    const nics = (second['request'] as { nics?: unknown }).nics;
    assert.equal(nics, [{ bridge: 'br1', mac: said[0] }, { bridge: 'br0' }, { bridge: 'br1', mac: said[1] }]);
    assert.is.not(said[0], said[1]);
    assert.is(second['result'], 'ok', `the second request was granted: ${JSON.stringify(second)}`);
    const taps = (second['taps'] as Array<{ bridge: string; mac?: string }>);
    assert.equal(taps.map((t) => t.mac), [said[0], undefined, said[1]], 'the br1 taps are locked to the MACs qemu got; br0 is not locked');
    // iPXE asks on its first NIC first: the br1 tap locked to said[0].
    const { value: seen } = await waitFor(() => {
      if (capture.stdout().split('\n').some((l) => l.includes(said[0]!) && /BOOTP\/DHCP, Request/.test(l))) return 'the request';
      return client.exit() === undefined ? false : 'the client\'s end';
    }, 240_000, { what: `a DHCP request from ${said[0]} on br1`, describe: () => `capture: ${capture.stdout().slice(-300)} client: ${client.stderr().slice(-600)}` });
    assert.is(seen, 'the request', `the client ended before the guest asked for an address: ${client.stderr().slice(-600)}`);
  } finally {
    capture.kill('SIGTERM');
    // SIGTERM: the client stops qemu and waits for it (a SIGKILLed client leaves qemu to end alone).
    const pid = clientPid('xkvm-mq-lock');
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
    await within(client.exited, 30_000, 'the client to exit after SIGTERM').catch(() => client.kill('SIGKILL'));
    await waitFor(() => userTaps().length === 0, 10_000, { what: 'no tap left', describe: () => userTaps().join(' ') });
  }
});

test.run();
