/**
 * Issue 12, item 5: `xkvm doctor` as real users in a network namespace with a real
 * socket-activated helper: an allowed user's bridge is fine (exit 0), a refused user's is not
 * (exit 1, the fix names the allow line), a helper that does not answer and a bridge that does not
 * exist fail, too many queues and no taps left fail, and KVM is reported as the user can really
 * open it. Doctor makes no tap and sends the helper no request.
 */
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { makeScratch, runXkvm, startActivatedHelper, startHolder, stop, type Scratch, type Watched } from '../../support/helper-proc.js';
import { createNetns, createTestUser, removeTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { tunDevices } from '../../support/taps.js';

let ns: Netns;
let alice: TestUser;
let bob: TestUser;
let scratch: Scratch;
let conf = '';
let activator: Watched;
let env: Record<string, string>;

test.before(async () => {
  if (process.geteuid?.() !== 0) throw new Error('this suite must run as root: it starts the helper and runs ordinary users');
  sweepStaleNetns();
  alice = createTestUser('da');
  bob = createTestUser('db');
  ns = createNetns({ bridges: ['br0'] });
  scratch = makeScratch('dr');
  conf = scratch.policy([`allow br0 ${alice.name}`, `max-taps 1 ${alice.name}`, `max-queues 2 ${alice.name}`, `mac-lock br0 ${alice.name}`]);
  activator = await startActivatedHelper(ns, { config: conf, stateDir: scratch.state, socket: scratch.socket, idleSeconds: 30 });
  env = { XKVM_HELPER_SOCKET: scratch.socket, HOME: scratch.dir };
});

test.after(async () => {
  if (activator !== undefined) await stop(activator);
  ns?.destroy();
  scratch?.remove();
  for (const u of [alice, bob]) if (u !== undefined) removeTestUser(u);
});

async function doctor(user: TestUser, args: readonly string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  const r = await runXkvm(ns, user.name, ['doctor', '--policy', conf, ...args], { ...env, ...extraEnv });
  return { code: r.code, lines: r.stdout.split('\n').filter((l) => l !== ''), stderr: r.stderr };
}

function line(lines: readonly string[], start: string): string {
  const found = lines.find((l) => l.startsWith(start));
  assert.ok(found !== undefined, `no line starting ${JSON.stringify(start)} in:\n${lines.join('\n')}`);
  return found!;
}

/** Whether `user` can open /dev/kvm read-write here (what doctor must report). */
function kvmUsable(user: TestUser): boolean {
  return ns.exec(['/usr/bin/test', '-r', '/dev/kvm', '-a', '-w', '/dev/kvm'], { user: user.name }).status === 0;
}

test('an allowed user on an existing bridge: every line says how it stands, the grants that apply are named, and doctor exits 0', async () => {
  const r = await doctor(alice, ['--netdev', 'br0,queues=2']);
  assert.is(r.code, 0, `${r.lines.join('\n')}\n${r.stderr}`);
  assert.ok(line(r.lines, 'ok   helper:').includes(`the socket ${scratch.socket} ($XKVM_HELPER_SOCKET) answers`));
  assert.is(line(r.lines, 'ok   br0: a').slice(0, 'ok   br0: a Linux bridge, MTU 1500'.length), 'ok   br0: a Linux bridge, MTU 1500');
  assert.is(line(r.lines, 'ok   br0: allowed'), `ok   br0: allowed for you by ${conf}:1: allow br0 ${alice.name}`);
  assert.match(line(r.lines, 'ok   br0: a 2-queue'), `a 2-queue tap (max-queues 2); mac-lock: only frames from the guest's MAC pass (${conf}:4: mac-lock br0 ${alice.name}); mac=auto becomes a random 52:54:00 MAC`);
  assert.match(line(r.lines, 'ok   taps:'), '0 tap(s) of yours exist now; max-taps 1, so 1 left');
  assert.ok(line(r.lines, 'ok   qemu:').endsWith('qemu-system-x86_64'));
  assert.is(r.lines.at(-1), 'a VM with these netdevs would start');
  const kvm = line(r.lines, kvmUsable(alice) ? 'ok   kvm:' : 'WARN kvm:');
  if (!kvmUsable(alice)) assert.match(kvm, '; fix: ', 'no KVM: a warning (TCG still runs) with the fix');
});

test('a user the policy does not name is refused on the bridge with the fix, and doctor exits 1', async () => {
  const r = await doctor(bob, ['--netdev', 'br0']);
  assert.is(r.code, 1, r.lines.join('\n'));
  const refused = line(r.lines, 'FAIL br0: the helper\'s policy refuses you:');
  assert.match(refused, `fix: ask an admin for a line 'allow br0 ${bob.name}' in the helper's policy`);
  assert.is(r.lines.at(-1), 'a VM with these netdevs would not start: 1 problem(s) above');
});

test('a helper that does not answer, a bridge that does not exist (nor allowed), more queues than max-queues and more taps than are left each fail with their fix', async () => {
  const r = await doctor(alice, ['--netdev', 'br9', '--netdev', 'br0,queues=3'], { XKVM_HELPER_SOCKET: join(scratch.dir, 'nobody-here.sock') });
  assert.is(r.code, 1);
  assert.match(line(r.lines, 'FAIL helper:'), 'does not answer (ENOENT); fix: unset XKVM_HELPER_SOCKET or point it at a served socket');
  assert.match(line(r.lines, 'FAIL br9:'), 'no such device on this host; fix: ask an admin to create the bridge (ip link add br9 type bridge)');
  assert.match(line(r.lines, 'FAIL br0:'), 'queues=3 is more than your max-queues 2; fix: ask for queues=2 or fewer');
  assert.match(line(r.lines, 'FAIL br9: the helper\'s policy refuses you:'), `allow br9 ${alice.name}`);
  assert.match(line(r.lines, 'FAIL taps:'), 'max-taps 1, so 1 left (the helper counts the taps your requests made); this VM needs 2');
  assert.is(r.lines.at(-1), 'a VM with these netdevs would not start: 5 problem(s) above');
});

test('no taps left of max-taps fails; user networking alone needs no helper', async () => {
  const holder = startHolder(ns, alice.name, { socket: scratch.socket, bridges: ['br0'], lifetime: 'persistent', macs: ['52:54:00:aa:bb:01'] });
  const { results } = await holder.result(15_000);
  await stop(holder);
  const made = results[0];
  try {
    assert.ok(made?.ok, JSON.stringify(results));
    const r = await doctor(alice, ['--netdev', 'br0']);
    assert.is(r.code, 1);
    assert.match(line(r.lines, 'FAIL taps:'), '1 tap(s) of yours exist now; max-taps 1, so 0 left');
    assert.match(line(r.lines, 'FAIL taps:'), 'this VM needs 1; fix: stop a VM');
    const user = await doctor(bob, ['--netdev', 'user'], { XKVM_HELPER_SOCKET: join(scratch.dir, 'nobody-here.sock') });
    assert.is(user.code, 0, user.lines.join('\n'));
    assert.match(line(user.lines, 'WARN helper:'), 'does not answer');
  } finally {
    for (const [name, d] of tunDevices(ns)) if (d.owner === alice.name) ns.ip('link', 'del', name);
  }
});

test('a VLAN the policy gives on a Linux bridge that does not filter VLANs fails, saying what the admin must set', async () => {
  const vlanConf = scratch.policy([`allow br0 ${bob.name}`, `vlan br0 20 ${bob.name}`], 'vlan.conf');
  const r = await runXkvm(ns, bob.name, ['doctor', '--policy', vlanConf, '--netdev', 'br0'], env);
  const lines = r.stdout.split('\n');
  assert.is(r.code, 1, lines.join('\n'));
  assert.match(line(lines, 'ok   br0: an access port'), 'an access port of VLAN 20 (set by the policy)');
  assert.match(line(lines, 'FAIL br0: the policy puts your taps in VLAN 20'), 'fix: ask an admin to turn VLAN filtering on (ip link set br0 type bridge vlan_filtering 1)');
});

test('without --netdev, doctor checks what xkvm would use without one: the default bridge, virbr0', async () => {
  const r = await doctor(alice, []);
  assert.is(r.code, 1);
  assert.match(line(r.lines, 'FAIL virbr0:'), 'no such device on this host');
});

test('doctor made no tap and sent the helper no request', () => {
  assert.equal([...tunDevices(ns).keys()], []);
  const requests = activator.audits.filter((a) => a.event === 'request' && JSON.stringify(a['caller']).includes(`"uid":${bob.uid}`));
  assert.equal(requests, [], 'bob only ever ran doctor');
});

test.run();
