/**
 * xkvm-bridge-helper, the real bundled program, run as an ordinary user in a network namespace
 * the way qemu runs it (`--use-vnet --fd=3 --br=br0`, fd 3 one end of a socket pair) against a
 * real helper on a socket: the other end (standing in for qemu) reads one byte 0x00 and one fd,
 * a tap of the user's on br0 that is not persistent, and the program exits 0. Closing that fd
 * removes the tap within 2 s. A bridge the policy refuses: status 1, the helper's refusal as one
 * line on stderr, nothing sent, no tap. (qemu itself and libvirt running it: the suites of
 * qemu's helper= and libvirt's session mode.) Nothing is installed outside the namespace and /tmp.
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { closeFds, receiveWithFds, socketPair } from '../../client/src/native/fdpass.js';
import { makeScratch, startSocketHelper, stop, watch, type Scratch, type Watched } from '../support/helper-proc.js';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from '../support/netns.js';
import { REPO_ROOT } from '../support/reference.js';
import { tunDevices } from '../support/taps.js';
import { waitFor, within } from '../support/wait.js';

const PROGRAM = join(REPO_ROOT, 'dist', 'bin', 'xkvm-bridge-helper.cjs');

let ns: Netns;
let user: TestUser;
let scratch: Scratch;
let helper: Watched;

test.before(async () => {
  user = createTestUser('brhelp');
  ns = createNetns({ bridges: ['br0', 'br1'] });
  scratch = makeScratch('brhelp');
  const conf = scratch.policy([`allow br0 ${user.name}`]);
  helper = await startSocketHelper(ns, { config: conf, stateDir: scratch.state, socket: scratch.socket });
  ns.exec(['/usr/bin/chmod', '0666', scratch.socket]);
});

test.after(async () => {
  if (helper !== undefined) await stop(helper);
  ns?.destroy();
  scratch?.remove();
  if (user !== undefined) removeTestUser(user);
});

/** The program as the user, as qemu runs it, with `socket` as its fd 3. */
async function run(bridge: string, socket: number): Promise<{ code: number | null; stderr: string }> {
  const child = watch(ns.spawn([process.execPath, PROGRAM, '--use-vnet', '--fd=3', `--br=${bridge}`],
    { user: user.name, env: { XKVM_HELPER_SOCKET: scratch.socket }, stdio: ['ignore', 'pipe', 'pipe', socket] }));
  const exit = await within(child.exited, 30_000, 'xkvm-bridge-helper to exit');
  return { code: exit.code, stderr: child.stderr() };
}

test('run as qemu runs it, the user\'s tap on br0 arrives as one fd with one byte 0x00, not persistent; closing the fd removes it within 2 s', async () => {
  const [mine, theirs] = socketPair();
  try {
    const result = await run('br0', theirs);
    assert.equal(result, { code: 0, stderr: '' });
    const got = await receiveWithFds(mine, 16, 1, 10_000);
    assert.equal([...got.data], [0]);
    assert.is(got.fds.length, 1);
    assert.is(readlinkSync(`/proc/self/fd/${got.fds[0]}`), '/dev/net/tun');
    const taps = [...tunDevices(ns).values()];
    assert.is(taps.length, 1, JSON.stringify(taps));
    const tap = taps[0]!;
    assert.ok(tap.owner === user.name || tap.owner === String(user.uid), `the user's: ${tap.owner}`);
    assert.is(tap.master, 'br0');
    assert.is(tap.persist, false);
    const closed = Date.now();
    closeFds(got.fds);
    await waitFor(() => tunDevices(ns).size === 0, 2_000, { since: closed, what: 'the tap to be gone' });
  } finally {
    closeFds([mine, theirs]);
  }
});

test('a bridge the policy refuses: status 1, the refusal as one line on stderr, nothing sent, no tap', async () => {
  const [mine, theirs] = socketPair();
  try {
    const result = await run('br1', theirs);
    assert.is(result.code, 1);
    assert.match(result.stderr, /^xkvm-bridge-helper: the helper refused: .*br1.* \[DENIED\] \(via .*\)\n$/);
    closeFds([theirs]);
    const got = await receiveWithFds(mine, 16, 1, 10_000);
    assert.equal([got.data.length, got.fds.length], [0, 0], 'end of stream, no fd');
    assert.is(tunDevices(ns).size, 0);
  } finally {
    closeFds([mine, theirs]);
  }
});

test.run();
