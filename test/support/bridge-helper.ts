/**
 * xkvm-bridge-helper for system tests: the built bin behind a launcher, as qemu's
 * `-netdev bridge,helper=` and libvirt's `bridge_helper` run it.
 *
 * Not installed at /usr/local/libexec/xkvm/xkvm-bridge-helper by `xkvm-helper install`: that
 * touches real system paths that other suites install and remove. The launcher is the very file
 * install writes there (renderBridgeHelperLauncher: `#!node`, an import of the bundle), in the
 * test helper's directory. It finds the helper as the client does: XKVM_HELPER_SOCKET (qemu passes
 * its environment on), else /run/xkvm/helper.sock (under libvirt, which filters the environment:
 * see libvirt-session.ts `helperSocket`).
 *
 * bridgeHelperWorld() is the set-up both system suites share: a namespace with br0, a real xkvm
 * helper there whose policy allows one new user on br0 and not another, and the launcher.
 */
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { startHelper, type AuditEntry, type HelperProcess } from './helper-process.js';
import { stop, watch } from './helper-proc.js';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from './netns.js';
import { renderBridgeHelperLauncher } from '../../helper/src/install/launcher.js';
import { REPO_ROOT } from './reference.js';
import { tunDevices } from './taps.js';
import { PATIENCE_MS, waitFor } from './wait.js';

const TCPDUMP = '/usr/bin/tcpdump';

/** The built xkvm-bridge-helper (package.json `bin`). */
const BRIDGE_HELPER_BIN = join(REPO_ROOT, 'dist', 'bin', 'xkvm-bridge-helper.cjs');

/** Writes the launcher (see the top of this file) into `dir`, root-owned, mode 0755. */
function writeLauncher(dir: string): string {
  if (!existsSync(BRIDGE_HELPER_BIN)) throw new Error(`${BRIDGE_HELPER_BIN} is missing: run npm run build`);
  const launcher = join(dir, 'xkvm-bridge-helper');
  writeFileSync(launcher, renderBridgeHelperLauncher(process.execPath, BRIDGE_HELPER_BIN), { mode: 0o755 });
  chmodSync(launcher, 0o755);
  return launcher;
}

export interface BridgeHelperWorld {
  readonly ns: Netns;
  /** Allowed on br0 by the policy. */
  readonly user: TestUser;
  /** Not allowed anywhere (default deny). */
  readonly refused: TestUser;
  readonly helper: HelperProcess;
  /** The launcher as install writes it (no space in its path: qemu and libvirt exec it directly). */
  readonly launcher: string;
  /** Names of the taps in the namespace owned by `who`. */
  tapsOf(who: TestUser): string[];
  /**
   * Checks the helper's audit: one make-nics request of `who` allowed, lifetime `fd`, naming `tap`;
   * then (waiting for it) the `fd-tap-gone` record naming it, once the tap is gone.
   */
  checkFdTapAudit(who: TestUser, tap: string): Promise<void>;
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
    const launcher = writeLauncher(helper.dir);
    const h = helper;
    const names = (a: AuditEntry): string => JSON.stringify(a['taps'] ?? []);
    return {
      ns, user, refused, helper, launcher, remove,
      async checkFdTapAudit(who, tap) {
        const made = h.audit().filter((a) => a.event === 'request' && a['op'] === 'make-nics' && (a['caller'] as { uid?: number } | undefined)?.uid === who.uid && a['result'] === 'ok');
        assert.is(made.length, 1, `one tap made for ${who.name}: ${JSON.stringify(made)}`);
        assert.is(made[0]!['lifetime'], 'fd', 'by fd handoff');
        assert.match(names(made[0]!), `"${tap}"`, 'naming the tap');
        await waitFor(() => h.audit().some((a) => a.event === 'fd-tap-gone' && a['uid'] === who.uid && a['result'] === 'ok' && names(a).includes(`"${tap}"`)), PATIENCE_MS,
          { what: `the helper's fd-tap-gone record for ${tap}`, describe: () => JSON.stringify(h.audit().slice(-3)) });
      },
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
