// Authorization against the real helper, with callers that are ordinary users (agent.ts run by
// runuser): the policy's allow/deny/max-taps, bridges that do not exist or are not bridges, and
// ovs-cleanup of ports that belong to someone else (invariant 3), with a real Open vSwitch. Each
// refusal: the right code and a sentence, nothing changed (devices, OVS ports, session records),
// exactly one audit record naming the caller's real uid, and the helper still serving.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { formatMacLockRefusal } from '../../../shared/src/protocol/mac-lock.js';
import type { ErrorReply } from '../../../shared/src/protocol/messages.js';
import { createTestUser, removeTestUser, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import {
  Agent, assertError, assertNics, closeBench, fail, links, makeNicsRequest, openBench, ownRecords, ownRecordsSince, PATIENCE_MS,
  stillServes, tapOwner, type Bench,
} from './support.js';
import { waitFor } from '../../support/wait.js';
import { WireConnection, type Next } from './wire.js';


let bench: Bench | undefined;
let users: [TestUser, TestUser] | undefined;
let ovs: Ovs | undefined;
let alice: Agent | undefined;
let bob: Agent | undefined;
const b = (): Bench => bench ?? fail('no bench');
const a = (): Agent => alice ?? fail('no agent A');
const o = (): Agent => bob ?? fail('no agent B');
const db = (): string => ovs?.db ?? fail('no OVS');

test.before(async () => {
  bench = await openBench({ policy: 'allow br0 root\n' });
  ovs = startOvs(bench.ns, { bridges: ['ovsbr0'] });
  bench.ns.ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  users = [createTestUser('a'), createTestUser('b')];
  alice = Agent.start(bench.ns, users[0]);
  bob = Agent.start(bench.ns, users[1]);
});

test.after(async () => {
  await alice?.stop();
  await bob?.stop();
  ovs?.stop();
  await closeBench(bench);
  for (const user of users ?? []) removeTestUser(user);
});

const A = (): string => a().user.name;
const B = (): string => o().user.name;

/** The policy used by most cases; `extra` lines come first. */
function policy(extra = ''): string {
  return `${extra}ovsdb ${db()}\nallow br0 root ${A()} ${B()}\nallow ovsbr0 root ${A()} ${B()}\n`;
}

let conns = 0;

interface Refusal {
  readonly agent: Agent;
  readonly value: { id: number } & Record<string, unknown>;
  readonly code: string;
  readonly mentions?: RegExp;
  /** run a make-nics on br0 on the same connection afterwards (when the caller may) */
  readonly sameAfter?: boolean;
}

/**
 * Send `value` as the agent's user on a fresh connection; check the refusal, that nothing
 * changed, the audit record, and that the helper (and the connection) still serves.
 */
async function refused(r: Refusal, context: string): Promise<ErrorReply> {
  const { helper, ns } = b();
  const before = links(ns);
  const ports = ovs?.vsctl('list-ports', 'ovsbr0') ?? '';
  const records = helper.stateFiles();
  const mark = helper.auditMark();
  const conn = `c${(conns += 1)}`;
  const { pid } = await r.agent.open(conn, helper.socket);
  const own = { pids: [pid], ids: [r.value.id] };
  let sameTaps: string[] = [];
  try {
    const reply = assertError(await r.agent.ask(conn, r.value), r.code, r.value.id, context);
    if (r.mentions !== undefined) assert.match(reply.error.message, r.mentions, `${context}: the message`);
    assert.equal(links(ns), before, `${context}: the devices in the namespace changed`);
    assert.is(ovs?.vsctl('list-ports', 'ovsbr0') ?? '', ports, `${context}: the OVS ports changed`);
    assert.equal(helper.stateFiles(), records, `${context}: the session records changed`);
    await ownRecordsSince(helper, mark, own, 1);
    // root's requests come after the refusal: once their records are in, all of the refusal's are
    await stillServes(b(), context);
    const audit = ownRecords(helper.auditSince(mark), own);
    assert.is(audit.length, 1, `${context}: exactly one audit record: ${JSON.stringify(audit)}`);
    const record = audit[0]!;
    assert.is(record.event, 'request');
    assert.is(record['code'], reply.error.code);
    assert.is((record['caller'] as { uid?: unknown } | undefined)?.uid, r.agent.user.uid, `${context}: the audited uid`);
    if (r.sameAfter === true) {
      const id = b().id();
      const nics = assertNics(await r.agent.ask(conn, makeNicsRequest(id)), id, ['br0'], ns, `${context}: make-nics on the same connection`);
      sameTaps = nics.map((n) => n.tap);
      assert.is(tapOwner(ns, nics[0]!.tap), r.agent.user.uid, `${context}: the tap's owner`);
    }
    return reply;
  } finally {
    await r.agent.close(conn);
    if (sameTaps.length > 0) await sessionEnded(mark, sameTaps);
  }
}

/** Waits for the session-end record of the session that made `taps` (its taps and record are gone then). */
async function sessionEnded(mark: number, taps: readonly string[]): Promise<void> {
  const { helper } = b();
  await waitFor(() => ownRecords(helper.auditSince(mark), { pids: [], taps }).some((x) => x.event === 'session-end'), PATIENCE_MS,
    { what: `the session of ${taps.join(' ')} to end` });
}

test('a user the policy does not allow gets DENIED naming the user, the bridge and the policy file', async () => {
  b().helper.setPolicy(policy());
  const reply = await refused({ agent: o(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: ['br1'] }, code: 'DENIED', sameAfter: true }, 'not allowed');
  assert.match(reply.error.message, B());
  assert.match(reply.error.message, 'br1');
  assert.ok(reply.error.message.includes(b().helper.config), `the message does not name the policy (${b().helper.config}): ${reply.error.message}`);
});

test('a deny line beats an allow line whether it comes before or after it, and the reply names the deny line', async () => {
  const { helper } = b();
  helper.setPolicy(policy(`allow br1 ${B()}\ndeny br1 ${B()}\ndeny br1 @nosuchgroup\n`));
  const after = await refused({ agent: o(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: ['br1'] }, code: 'DENIED', sameAfter: true }, 'deny after allow');
  assert.ok(after.error.message.includes(`${helper.config}:2`), `the deny line (line 2) is not named: ${after.error.message}`);
  helper.setPolicy(policy(`deny * ${B()}\nallow br1 ${B()}\nallow * *\n`));
  const before = await refused({ agent: o(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: ['br1'] }, code: 'DENIED' }, 'deny before allow');
  assert.ok(before.error.message.includes(`${helper.config}:1`), `the deny line (line 1) is not named: ${before.error.message}`);
  // one denied bridge refuses the whole request: nothing is made on the allowed one
  helper.setPolicy(policy(`deny br1 ${B()}\n`));
  await refused({ agent: o(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: ['br0', 'br1'] }, code: 'DENIED', sameAfter: true }, 'one of two denied');
});

test('a bridge that does not exist gets NO_SUCH_BRIDGE naming it, and an earlier good bridge gets no tap', async () => {
  b().helper.setPolicy(policy(`allow * ${A()}\n`));
  await refused({ agent: a(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: ['nosuchbr0'] }, code: 'NO_SUCH_BRIDGE', mentions: /nosuchbr0/, sameAfter: true }, 'missing bridge');
  await refused({ agent: a(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: ['br0', 'ovsbr0', 'nosuchbr1'] }, code: 'NO_SUCH_BRIDGE', mentions: /nosuchbr1/ }, 'third bridge missing');
});

test('a device that is not a bridge (lo, a veth, another user\'s tap) gets NO_SUCH_BRIDGE and is left as it was', async () => {
  const { helper, ns } = b();
  helper.setPolicy(policy(`allow * ${A()}\n`));
  // bob holds a persistent tap; alice may not attach to it
  await o().open('bobs', helper.socket);
  const id = b().id();
  const bobs = assertNics(await o().ask('bobs', makeNicsRequest(id, ['br0'], 'persistent')), id, ['br0'], ns, 'bob\'s tap')[0]!.tap;
  await o().close('bobs');
  try {
    const master = (): string => ns.ip('-o', 'link', 'show', bobs);
    const shown = master();
    for (const device of ['lo', 'veth0', bobs]) {
      await refused({ agent: a(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: [device] }, code: 'NO_SUCH_BRIDGE', mentions: new RegExp(device) }, `bridge ${device}`);
    }
    assert.is(tapOwner(ns, bobs), o().user.uid, 'bob\'s tap changed owner');
    assert.is(master(), shown, 'bob\'s tap changed');
  } finally {
    ns.ip('link', 'del', bobs);
  }
});

test('a request that would exceed max-taps gets QUOTA and creates nothing, counting taps already held', async () => {
  const { helper, ns } = b();
  helper.setPolicy(policy(`allow br1 ${A()}\nmax-taps 2 ${A()}\n`));
  await refused({ agent: a(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: ['br0', 'br1', 'br0'] }, code: 'QUOTA', mentions: /max-taps 2/, sameAfter: true }, '3 at once, limit 2');
  // hold two, then ask for one more
  await a().open('held', helper.socket);
  const id = b().id();
  const mark = helper.auditMark();
  const held = assertNics(await a().ask('held', makeNicsRequest(id, ['br0', 'br1'])), id, ['br0', 'br1'], ns, 'two held');
  try {
    await refused({ agent: a(), value: { v: 1, id: b().id(), op: 'make-nics', bridges: ['br0'] }, code: 'QUOTA', mentions: /holds 2/ }, 'one more than held');
  } finally {
    await a().close('held');
    await sessionEnded(mark, held.map((n) => n.tap));
  }
});

test('per-NIC options against the policy: more queues than max-queues is QUOTA, no mac under mac-lock BAD_REQUEST naming it and every such nic, handoff fd with a lifetime BAD_REQUEST; nothing is made (multi-queue taps: mtu.test.ts; mac-locked taps: mac-lock.test.ts; VLANs: vlan.test.ts)', async () => {
  const { helper, ns } = b();
  helper.setPolicy(policy(`max-queues 2 ${A()}\nmac-lock br0 ${A()}\nvlan ovsbr0 10 ${A()}\n`));
  const mk = (nics: unknown[], extra: Record<string, unknown> = {}) => ({ v: 1, id: b().id(), op: 'make-nics', nics, ...extra });
  await refused({ agent: a(), value: mk([{ bridge: 'br0', mac: '52:54:00:00:00:01', queues: 3 }]), code: 'QUOTA', mentions: /at most 2 queues a tap \(max-queues, .*:1\)/ }, 'queues over max-queues');
  const lock = await refused({ agent: a(), value: mk([{ bridge: 'br0' }]), code: 'BAD_REQUEST', mentions: /mac-lock/, sameAfter: false }, 'no mac under mac-lock');
  await refused({ agent: a(), value: mk([{ bridge: 'br0', mac: '00:16:3e:12:34:56' }]), code: 'BAD_REQUEST', mentions: /universally administered .* under mac-lock on br0/, sameAfter: false }, 'a real NIC\'s MAC under mac-lock');
  assert.ok(lock.error.message.includes(`${helper.config}:2`), `the mac-lock line is not named: ${lock.error.message}`);
  // Every nic without a mac is named in one refusal (before the queue check), in the words the client reads back.
  const all = await refused({ agent: a(), value: mk([{ bridge: 'br0' }, { bridge: 'br0', mac: '52:54:00:00:00:01' }, { bridge: 'br0', queues: 3 }]), code: 'BAD_REQUEST', mentions: /mac-lock/ }, 'two nics without a mac under mac-lock');
  assert.is(all.error.message, formatMacLockRefusal({ user: a().user.name, missing: [0, 2].map((index) => ({ index, bridge: 'br0', rule: `${helper.config}:2` })) }));
  await refused({ agent: o(), value: mk([{ bridge: 'br0' }], { handoff: 'fd', lifetime: 'session' }), code: 'BAD_REQUEST', mentions: /"lifetime" does not apply to handoff "fd"/, sameAfter: true }, 'handoff fd with a lifetime');
  // bob is under none of these lines: nics with a MAC and one queue are plain taps, as bridges were
  await o().open('plain', helper.socket);
  const id = b().id();
  const mark = helper.auditMark();
  const made = assertNics(await o().ask('plain', mk([{ bridge: 'br0', mac: '52:54:00:00:00:02', queues: 1 }, { bridge: 'ovsbr0' }], { id, handoff: 'name' })), id, ['br0', 'ovsbr0'], ns, 'plain nics');
  assert.is(tapOwner(ns, made[0]!.tap), o().user.uid);
  assert.equal(made.map((n) => n.mac), [undefined, undefined], 'a tap not under mac-lock is not locked, and its reply has no mac');
  await o().close('plain');
  await sessionEnded(mark, made.map((n) => n.tap));
});

test('ovs-cleanup of another user\'s port, an admin\'s port or a root caller\'s guess gets NOT_OWNER and leaves port and tap in place', async () => {
  const { helper, ns } = b();
  helper.setPolicy(policy());
  const vsctl = (...args: string[]): string => ovs?.vsctl(...args) ?? fail('no OVS');
  await a().open('alices', helper.socket);
  const id = b().id();
  const nic = assertNics(await a().ask('alices', makeNicsRequest(id, ['ovsbr0'], 'persistent')), id, ['ovsbr0'], ns, 'alice\'s OVS tap')[0]!;
  assert.is(nic.type, 'ovs');
  await a().close('alices');
  vsctl('add-port', 'ovsbr0', 'adminp0', '--', 'set', 'interface', 'adminp0', 'type=internal');
  try {
    const port = { bridge: 'ovsbr0', tap: nic.tap };
    await refused({ agent: o(), value: { v: 1, id: b().id(), op: 'ovs-cleanup', ports: [port] }, code: 'NOT_OWNER', mentions: new RegExp(nic.tap), sameAfter: true }, 'bob removes alice\'s port');
    await refused({ agent: o(), value: { v: 1, id: b().id(), op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap: 'adminp0' }] }, code: 'NOT_OWNER' }, 'bob removes an admin port');
    // root is not special to the helper: it owns no port here
    const mark = helper.auditMark();
    const root = await WireConnection.connect(helper.socket);
    const rid = b().id();
    const next: Next = await root.ask({ v: 1, id: rid, op: 'ovs-cleanup', ports: [port] });
    root.destroy();
    assertError(next, 'NOT_OWNER', rid, 'root removes alice\'s port');
    const [record] = await ownRecordsSince(helper, mark, { pids: [process.pid], ids: [rid] }, 1);
    assert.is(record?.['code'], 'NOT_OWNER', JSON.stringify(record));
    assert.match(vsctl('list-ports', 'ovsbr0'), nic.tap);
    assert.match(vsctl('list-ports', 'ovsbr0'), 'adminp0');
    assert.is(tapOwner(ns, nic.tap), a().user.uid);
    // mixed: bob's own port goes, alice's stays
    await o().open('bobs', helper.socket);
    const bid = b().id();
    const mine = assertNics(await o().ask('bobs', makeNicsRequest(bid, ['ovsbr0'], 'persistent')), bid, ['ovsbr0'], ns, 'bob\'s OVS tap')[0]!;
    const cid = b().id();
    const mixed = await o().ask('bobs', { v: 1, id: cid, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap: mine.tap }, port] });
    await o().close('bobs');
    if (mixed.kind !== 'reply' || !mixed.reply.ok || !('removed' in mixed.reply)) fail(`mixed cleanup: ${JSON.stringify(mixed)}`);
    assert.equal(mixed.reply.removed, [{ bridge: 'ovsbr0', tap: mine.tap }]);
    const left = vsctl('list-ports', 'ovsbr0');
    assert.not.match(left, mine.tap);
    assert.match(left, nic.tap);
    ns.ip('link', 'del', mine.tap);
  } finally {
    vsctl('--if-exists', 'del-port', 'ovsbr0', nic.tap);
    vsctl('--if-exists', 'del-port', 'ovsbr0', 'adminp0');
    try {
      ns.ip('link', 'del', nic.tap);
    } catch {
      // gone
    }
  }
});

test.run();
