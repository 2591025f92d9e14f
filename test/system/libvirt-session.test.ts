/**
 * libvirt's session mode with xkvm-bridge-helper as `bridge_helper`, for real: an ordinary user's
 * own libvirt daemon (`virsh -c qemu:///session`, started on demand) in a network namespace where
 * a real xkvm helper listens; ~/.config/libvirt/qemu.conf names the bridge helper; a domain with
 * `<interface type='bridge'><source bridge='br0'/>` starts, libvirt runs the bridge helper
 * (`--use-vnet --br=br0 --fd=N`), which gets a tap from the xkvm helper by fd handoff and passes
 * it to libvirt, which gives it to qemu. The bridge helper is the launcher as `xkvm-helper install`
 * writes it, and finds the xkvm helper as installed, at /run/xkvm/helper.sock (libvirt passes no
 * XKVM_HELPER_SOCKET on): the session runs with a private /run where the test helper's socket is
 * at that path (libvirt-session.ts, `helperSocket`). The guest's iPXE ROM sends DHCP requests from the
 * domain's MAC, seen on br0; `virsh destroy` ends qemu and the tap is gone within 2 s. A user the
 * policy refuses cannot start the domain: virsh shows the bridge helper's refusal, no tap is made.
 */
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { bridgeHelperWorld, captureDhcp, type BridgeHelperWorld } from '../support/bridge-helper.js';
import { domainXml, startLibvirtSession } from '../support/libvirt-session.js';
import { tunDevices } from '../support/taps.js';
import { PATIENCE_MS, waitFor } from '../support/wait.js';

let world: BridgeHelperWorld;

test.before(async () => {
  world = await bridgeHelperWorld('lvs');
});

test.after(async () => {
  await world?.remove();
});

test("an ordinary user's session domain on br0 gets its tap from the xkvm helper: DHCP from its MAC on br0, and virsh destroy leaves no tap", async () => {
  const { ns, user } = world;
  const mac = '52:54:00:12:34:51';
  const lv = startLibvirtSession(ns, user, { bridgeHelper: world.launcher, helperSocket: world.helper.socket });
  const capture = await captureDhcp(ns, 'br0');
  try {
    lv.define(domainXml({ name: 'vm', bridge: 'br0', mac }));
    lv.mustVirsh('start', 'vm');
    await waitFor(() => capture.sawRequestFrom(mac), 90_000,
      { what: `a DHCP request from ${mac} on br0`, describe: () => `capture: ${capture.tail()} log: ${lv.domainLog('vm').slice(-500)}` });
    const taps = world.tapsOf(user);
    assert.is(taps.length, 1, `one tap owned by ${user.name}: ${taps.join(' ')}`);
    const tap = tunDevices(ns).get(taps[0]!)!;
    assert.is(tap.master, 'br0', 'attached to br0');
    assert.ok(tap.attached, 'qemu holds it');
    assert.not.ok(tap.persist, 'not persistent');
    assert.match(lv.mustVirsh('domiflist', 'vm'), taps[0]!, 'libvirt knows the tap by its name');
    lv.mustVirsh('destroy', 'vm');
    const destroyed = Date.now();
    await waitFor(() => world.tapsOf(user).length === 0, 2_000, { since: destroyed, what: 'the tap to be gone', describe: () => world.tapsOf(user).join(' ') });
    await world.checkFdTapAudit(user, taps[0]!);
  } finally {
    await capture.stop();
    lv.stop();
  }
});

test("a user the policy refuses: virsh start fails showing the bridge helper's refusal, and no tap is made", async () => {
  const { ns, refused } = world;
  const lv = startLibvirtSession(ns, refused, { bridgeHelper: world.launcher, helperSocket: world.helper.socket });
  try {
    lv.define(domainXml({ name: 'vm', bridge: 'br0', mac: '52:54:00:12:34:52' }));
    const r = lv.virsh('start', 'vm');
    assert.is.not(r.status, 0, 'the domain does not start');
    assert.match(r.stderr, /failed to communicate with bridge helper: .*stderr=xkvm-bridge-helper: .*may not put a tap on br0.*\[DENIED\] \(via \/run\/xkvm\/helper\.sock\)/, `libvirt shows the helper's line, which found the helper at the installed socket: ${r.stderr}`);
    assert.match(lv.mustVirsh('domstate', 'vm'), 'shut off');
    assert.equal(tunDevices(ns).size, 0, 'no tap at all');
    // (virsh ran synchronously: the helper's audit lines are read now)
    await waitFor(() => world.helper.audit().some((a) => a.event === 'request' && a['decision'] === 'deny' && (a['caller'] as { uid?: number } | undefined)?.uid === refused.uid),
      PATIENCE_MS, { what: 'the audit record of the refusal' });
  } finally {
    lv.stop();
  }
});

test.run();
