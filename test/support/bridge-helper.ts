/**
 * xkvm-bridge-helper for system tests: the built bin behind a launcher script, as qemu's
 * `-netdev bridge,helper=` and libvirt's `bridge_helper` run it.
 *
 * The installed launcher (/usr/local/libexec/xkvm/xkvm-bridge-helper, from `xkvm-helper
 * install`) is not used: installing it touches real system paths that other suites install and
 * remove. The test's launcher does the same (exec node on the bundled bin with the arguments it got)
 * and sets XKVM_HELPER_SOCKET to the test's helper, which libvirt would not pass on from the
 * caller's environment (see libvirt-session.ts).
 *
 * bridgeHelperWorld() is the set-up both system suites share: a namespace with br0, a real xkvm
 * helper there whose policy allows one new user on br0 and not another, and the launcher.
 */
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHelper, type HelperProcess } from './helper-process.js';
import { stop, watch } from './helper-proc.js';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from './netns.js';
import { REPO_ROOT } from './reference.js';
import { tunDevices } from './taps.js';
import { waitFor } from './wait.js';

const TCPDUMP = '/usr/bin/tcpdump';

const SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;

/** The built xkvm-bridge-helper (package.json `bin`). */
const BRIDGE_HELPER_BIN = join(REPO_ROOT, 'dist', 'bin', 'xkvm-bridge-helper.cjs');

/**
 * Writes `dir/name`: a root-owned 0755 shell script that runs the built xkvm-bridge-helper with
 * XKVM_HELPER_SOCKET=socket and the arguments it was given (what the installed launcher in
 * /usr/local/libexec/xkvm does, pointed at a test's helper). qemu and libvirt exec it directly
 * (no space in the path: no `sh -c`). Returns its path.
 */
function writeBridgeHelperLauncher(dir: string, socket: string, name = 'xkvm-bridge-helper'): string {
  for (const p of [dir, socket, process.execPath, BRIDGE_HELPER_BIN]) {
    if (!SAFE_PATH.test(p)) throw new Error(`unsuitable path for a launcher: ${JSON.stringify(p)}`);
  }
  if (!existsSync(BRIDGE_HELPER_BIN)) throw new Error(`${BRIDGE_HELPER_BIN} is missing: run npm run build`);
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nXKVM_HELPER_SOCKET=${socket} exec ${process.execPath} ${BRIDGE_HELPER_BIN} "$@"\n`, { mode: 0o755 });
  chmodSync(path, 0o755);
  return path;
}

export interface BridgeHelperWorld {
  readonly ns: Netns;
  /** Allowed on br0 by the policy. */
  readonly user: TestUser;
  /** Not allowed anywhere (default deny). */
  readonly refused: TestUser;
  readonly helper: HelperProcess;
  /** The launcher of xkvm-bridge-helper for this helper (writeBridgeHelperLauncher). */
  readonly launcher: string;
  /** Names of the taps in the namespace owned by `who`. */
  tapsOf(who: TestUser): string[];
  /** Stops the helper, deletes the namespace, removes the users. */
  remove(): Promise<void>;
}

/** The shared set-up (see the top of this file); `tag` names the users (`tag`, `tag`no). */
export async function bridgeHelperWorld(tag: string): Promise<BridgeHelperWorld> {
  if (!existsSync(TCPDUMP)) throw new Error(`bridge-helper system tests need ${TCPDUMP}: run .ci/setup`);
  const user = createTestUser(tag);
  const refused = createTestUser(`${tag}no`);
  const ns = createNetns({ bridges: ['br0'] });
  let helper: HelperProcess | undefined;
  const remove = async (): Promise<void> => {
    await helper?.stop();
    ns.destroy();
    removeTestUser(user);
    removeTestUser(refused);
  };
  try {
    helper = await startHelper(ns, { policy: `allow br0 ${user.name}\n` });
    const launcher = writeBridgeHelperLauncher(helper.dir, helper.socket);
    return {
      ns, user, refused, helper, launcher, remove,
      tapsOf: (who) => [...tunDevices(ns).values()].filter((t) => t.owner === who.name || t.owner === String(who.uid)).map((t) => t.name),
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

export interface DhcpCapture {
  /** Whether a DHCP request from `mac` has been seen. */
  sawRequestFrom(mac: string): boolean;
  /** The end of what tcpdump printed, for messages. */
  tail(): string;
  stop(): Promise<void>;
}

/** tcpdump on `bridge` in the namespace for DHCP (udp port 67); resolves once it listens. */
export async function captureDhcp(ns: Netns, bridge: string): Promise<DhcpCapture> {
  const w = watch(ns.spawn([TCPDUMP, '-i', bridge, '-n', '-e', '-l', 'udp port 67']));
  const all = (): string => w.stdout() + w.stderr();
  try {
    await waitFor(() => all().includes('listening on'), 10_000, { what: 'tcpdump to listen', describe: () => all() });
  } catch (error) {
    await stop(w);
    throw error;
  }
  return {
    sawRequestFrom: (mac) => w.stdout().split('\n').some((l) => l.includes(mac) && /BOOTP\/DHCP, Request/.test(l)),
    tail: () => all().slice(-300),
    stop: async () => { await stop(w); },
  };
}
