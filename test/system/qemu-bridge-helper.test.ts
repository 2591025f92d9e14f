/**
 * qemu's own bridge interface, `-netdev bridge,br=br0,helper=HELPER`, with xkvm-bridge-helper as
 * HELPER (the launcher `xkvm-helper install` writes, as install renders it), for real: an ordinary
 * user runs qemu under TCG in a network namespace where a real xkvm helper listens (qemu's
 * environment names its socket); qemu runs the bridge helper (`--use-vnet --fd=N --br=br0`), which gets a tap
 * from the xkvm helper by fd handoff and passes the fd on to qemu. The guest's iPXE ROM sends DHCP
 * requests from the MAC given, seen on the bridge. The tap is not persistent: after SIGKILL of
 * qemu it is gone within 2 s. A user the policy refuses gets a failing qemu, the refusal on its
 * stderr, and no tap. No /dev/net/tun for the user: the helper opens the tap.
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { bridgeHelperWorld, captureDhcp, type BridgeHelperWorld } from '../support/bridge-helper.js';
import { stop, watch } from '../support/helper-proc.js';
import type { TestUser } from '../support/netns.js';
import { tunDevices } from '../support/taps.js';
import { PATIENCE_MS, waitFor } from '../support/wait.js';

const QEMU = '/usr/bin/qemu-system-x86_64';
const PGREP = '/usr/bin/pgrep';

let world: BridgeHelperWorld;

test.before(async () => {
  for (const tool of [QEMU, PGREP]) {
    if (!existsSync(tool)) throw new Error(`the qemu bridge-helper test needs ${tool}: run .ci/setup`);
  }
  world = await bridgeHelperWorld('qbh');
});

test.after(async () => {
  await world?.remove();
});

function qemuArgv(mac: string, marker: string): string[] {
  return [QEMU, '-accel', 'tcg', '-m', '128', '-display', 'none', '-name', marker,
    '-netdev', `bridge,id=n0,br=br0,helper=${world.launcher}`, '-device', `virtio-net-pci,netdev=n0,mac=${mac}`, '-boot', 'n'];
}

/** qemu's own pid (the spawned child is ip netns exec → runuser → qemu). */
function qemuPid(who: TestUser, marker: string): number | undefined {
  try {
    const out = execFileSync(PGREP, ['-u', String(who.uid), '-f', `^${QEMU} .*-name ${marker} `], { encoding: 'utf8' });
    const pid = Number(out.trim().split('\n')[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

test("an ordinary user's qemu with -netdev bridge,helper=xkvm-bridge-helper boots iPXE on br0 (DHCP from its MAC), and after SIGKILL of qemu the tap is gone within 2 s", async () => {
  const { ns, user } = world;
  const mac = '52:54:00:12:34:41';
  const marker = 'xkvm-qbh-ok';
  const capture = await captureDhcp(ns, 'br0');
  const qemu = watch(ns.spawn(qemuArgv(mac, marker), { user: user.name, cwd: '/', env: { XKVM_HELPER_SOCKET: world.helper.socket } }));
  try {
    await waitFor(() => capture.sawRequestFrom(mac) || qemu.exit() !== undefined, 90_000,
      { what: `a DHCP request from ${mac} on br0`, describe: () => `capture: ${capture.tail()} qemu: ${qemu.stderr().slice(-500)}` });
    assert.ok(capture.sawRequestFrom(mac), `qemu ended before the guest asked for an address: ${qemu.stderr()}`);
    const taps = world.tapsOf(user);
    assert.is(taps.length, 1, `one tap owned by ${user.name}: ${taps.join(' ')}`);
    const tap = tunDevices(ns).get(taps[0]!)!;
    assert.is(tap.master, 'br0', 'attached to br0');
    assert.ok(tap.attached, 'qemu holds it');
    assert.not.ok(tap.persist, 'not persistent: it lives as long as its fd');
    const { value: pid } = await waitFor(() => qemuPid(user, marker), 10_000, { what: 'the qemu process' });
    process.kill(pid, 'SIGKILL');
    const killed = Date.now();
    await waitFor(() => world.tapsOf(user).length === 0, 2_000, { since: killed, what: 'the tap to be gone', describe: () => world.tapsOf(user).join(' ') });
    await world.checkFdTapAudit(user, taps[0]!);
  } finally {
    await capture.stop();
    await stop(qemu);
  }
});

test('a user the policy refuses: qemu fails, the refusal is on its stderr, and no tap is made', async () => {
  const { ns, refused } = world;
  const qemu = watch(ns.spawn(qemuArgv('52:54:00:12:34:42', 'xkvm-qbh-refused'), { user: refused.name, cwd: '/', env: { XKVM_HELPER_SOCKET: world.helper.socket } }));
  const { code } = await qemu.exited;
  const said = qemu.stderr();
  assert.is.not(code, 0, `qemu fails: ${said}`);
  assert.match(said, /^xkvm-bridge-helper: .*may not put a tap on br0.*\[DENIED\].*$/m, `the bridge helper's one line: ${said}`);
  assert.match(said, /bridge helper failed/, `qemu's own message follows: ${said}`);
  assert.equal(world.tapsOf(refused), [], 'no tap of the refused user');
  assert.equal(tunDevices(ns).size, 0, 'no tap at all');
  await waitFor(() => world.helper.audit().some((a) => a.event === 'request' && a['decision'] === 'deny' && (a['caller'] as { uid?: number } | undefined)?.uid === refused.uid),
    PATIENCE_MS, { what: 'the audit record of the refusal' });
});

test.run();
