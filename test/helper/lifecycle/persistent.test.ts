/**
 * Lifetime "persistent", through the real client's script interface (`xkvm tap-control`): the tap
 * outlives the client, belongs to the user, who can delete it without privilege; ovs-cleanup
 * removes the user's own OVS port and refuses another user's.
 */
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Netns, TestUser } from '../../support/netns.js';
import type { Ovs } from '../../support/ovs.js';
import { runXkvm, startHolder, type Scratch, type Watched } from '../../support/helper-proc.js';
import { within } from '../../support/wait.js';
import { present, tunDevices } from '../../support/taps.js';
import { bridgedHelper, type BridgedHelper } from './support.js';

let ns: Netns;
let ovs: Ovs;
let scratch: Scratch;
let helper: Watched;
let alice: TestUser;
let bob: TestUser;
let env: Record<string, string>;

let fixture: BridgedHelper | undefined;

test.before(async () => {
  fixture = await bridgedHelper('pe');
  ({ ns, ovs, scratch, helper } = fixture);
  [alice, bob] = fixture.users;
  env = { XKVM_HELPER_SOCKET: scratch.socket };
});

test.after(async () => {
  await fixture?.tearDown();
});

test('tap-control make-nics br0 user prints TAP:brctl and skip, and the tap outlives the client, owned by the user, who deletes it without privilege', async () => {
  // It needs well under a second; 10 s is the deadline for it to print AND exit.
  const r = await runXkvm(ns, alice.name, ['tap-control', 'make-nics', 'br0', 'user'], env, 10_000);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.is(lines.length, 3, r.stdout);
  const m = /^(xkvm[a-z2-7]{8}):brctl$/.exec(lines[0] ?? '');
  assert.ok(m !== null, r.stdout);
  assert.is(lines[1], 'skip');
  assert.is(lines[2], '');
  const tap = m[1]!;

  // The client has exited and its connection is closed: the tap stays.
  const dev = tunDevices(ns).get(tap);
  assert.ok(dev !== undefined, `${tap} still exists after the client exited`);
  assert.is(dev.owner, alice.name);
  assert.is(dev.master, 'br0');
  assert.is(dev.persist, true);
  assert.equal(scratch.records(), [], 'a persistent tap is no session');
  const audit = await helper.audit((a) => a.event === 'request' && a['lifetime'] === 'persistent' && JSON.stringify(a['taps']).includes(tap), 2000, 'the request record');
  assert.is(audit['result'], 'ok');

  // Another user cannot delete it; its owner can, as an ordinary user.
  const refused = ns.exec(['/usr/sbin/ip', 'tuntap', 'del', 'mode', 'tap', tap], { user: bob.name, openTun: true });
  assert.is.not(refused.status, 0);
  assert.equal(present(ns, [tap]), [tap]);
  const del = ns.exec(['/usr/sbin/ip', 'tuntap', 'del', 'mode', 'tap', tap], { user: alice.name, openTun: true });
  assert.is(del.status, 0, del.stderr);
  assert.equal(present(ns, [tap]), []);
});

test('tap-control make-nics br0,queues=2,mac=MAC prints TAP:brctl and the persistent tap is a multi-queue one', async () => {
  const r = await runXkvm(ns, alice.name, ['tap-control', 'make-nics', 'br0,queues=2,mac=52:54:00:12:34:0a'], env, 10_000);
  assert.is(r.code, 0, r.stderr);
  const m = /^(xkvm[a-z2-7]{8}):brctl\n$/.exec(r.stdout);
  assert.ok(m !== null, r.stdout);
  const tap = m[1]!;
  const [link] = JSON.parse(ns.ip('-d', '-j', 'link', 'show', tap)) as Array<{ master?: string; linkinfo?: { info_data?: { multi_queue?: boolean } } }>;
  assert.is(link?.master, 'br0');
  assert.is(link?.linkinfo?.info_data?.multi_queue, true, 'a multi_queue tap');
  const del = ns.exec(['/usr/sbin/ip', 'tuntap', 'del', 'mode', 'tap', 'multi_queue', tap], { user: alice.name, openTun: true });
  assert.is(del.status, 0, del.stderr);
  assert.equal(present(ns, [tap]), []);
});

test('tap-control ovs-cleanup removes the user\'s own OVS port, and refuses another user\'s with a clear message and a non-zero status', async () => {
  // A persistent tap on the OVS bridge, made with the client's connection code (so that this
  // test does not depend on `tap-control make-nics` exiting, which the test above checks).
  const holder = startHolder(ns, alice.name, { socket: scratch.socket, bridges: ['ovsbr0'], lifetime: 'persistent' });
  const { results } = await holder.result(15_000);
  holder.release();
  await within(holder.exited, 5000, 'the client to exit');
  const first = results[0];
  assert.ok(first?.ok, JSON.stringify(results));
  const tap = first.ok ? first.nics[0]?.tap ?? '' : '';
  assert.is(first.ok && first.nics[0]?.type, 'ovs');
  assert.equal(ovs.ports('ovsbr0'), [tap]);
  assert.is(tunDevices(ns).get(tap)?.owner, alice.name);

  const theft = await runXkvm(ns, bob.name, ['tap-control', 'ovs-cleanup', `ovsbr0:${tap}`], env);
  assert.is.not(theft.code, 0);
  assert.is(theft.stdout, '');
  const message = theft.stderr.trim();
  assert.is(message.split('\n').length, 1, `one line: ${theft.stderr}`);
  assert.match(message, /^xkvm: /);
  assert.match(message, new RegExp(`ovsbr0:${tap}`));
  assert.match(message, /NOT_OWNER|not (yours|owned|the owner)|owner/i);
  assert.equal(ovs.ports('ovsbr0'), [tap], 'the port is still there');
  console.log(`ovs-cleanup of another user's port (exit ${theft.code}): ${message}`);

  const own = await runXkvm(ns, alice.name, ['tap-control', 'ovs-cleanup', `ovsbr0:${tap}`], env);
  assert.is(own.code, 0, own.stderr);
  assert.equal(ovs.ports('ovsbr0'), []);
  // The tap itself stays its owner's to delete.
  assert.is(tunDevices(ns).get(tap)?.owner, alice.name);
  const del = ns.exec(['/usr/sbin/ip', 'tuntap', 'del', 'mode', 'tap', tap], { user: alice.name, openTun: true });
  assert.is(del.status, 0, del.stderr);
});

test.run();
