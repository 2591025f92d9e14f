// The audit trail (docs/protocol.md: every request is audited — who, what, decision, result, taps — on
// stderr): two ordinary users, each sending good requests, bad requests, requests that claim to
// be someone else, and broken frames. Every one leaves exactly one `xkvm-helper: audit {json}`
// record whose uid (and pid) is what the kernel says about the connection, never what the
// request says.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { AuditEntry } from '../../support/helper-process.js';
import { createTestUser, removeTestUser, type TestUser } from '../../support/netns.js';
import {
  Agent, assertError, assertNics, closeBench, fail, makeNicsRequest, openBench, ownRecords, ownRecordsSince, stillServes, tapOwner,
  type Bench, type Own,
} from './support.js';
import { frameOf, rawFrame } from './wire.js';


let bench: Bench | undefined;
const users: TestUser[] = [];
const agents: Agent[] = [];
const b = (): Bench => bench ?? fail('no bench');

test.before(async () => {
  users.push(createTestUser('a'), createTestUser('b'));
  bench = await openBench({ policy: `allow br0 root ${users.map((u) => u.name).join(' ')}\n` });
  for (const user of users) agents.push(Agent.start(bench.ns, user));
});

test.after(async () => {
  for (const agent of agents) await agent.stop();
  await closeBench(bench);
  for (const user of users) removeTestUser(user);
});

const uidOf = (r: AuditEntry): unknown => (r.event === 'request' ? (r['caller'] as { uid?: unknown } | undefined)?.uid : r['uid']);
const pidOf = (r: AuditEntry): unknown => (r.event === 'request' ? (r['caller'] as { pid?: unknown } | undefined)?.pid : r['pid']);

/** This case's records written after `mark`, once `count` of them are there. */
function recordsAfter(mark: number, own: Own, count: number): Promise<AuditEntry[]> {
  return ownRecordsSince(b().helper, mark, own, count);
}

test('each request of two users leaves exactly one record with the kernel\'s uid and pid, whatever the request claims', async () => {
  const { helper, ns } = b();
  for (const agent of agents) {
    const conn = `${agent.user.name}-1`;
    const { pid, uid } = await agent.open(conn, helper.socket);
    assert.is(uid, agent.user.uid);
    const context = agent.user.name;

    const first = helper.auditMark();
    let mark = first;
    const id = b().id();
    const nics = assertNics(await agent.ask(conn, makeNicsRequest(id)), id, ['br0'], ns, `${context}: make-nics`);
    assert.is(tapOwner(ns, nics[0]!.tap), agent.user.uid, `${context}: the tap's owner`);
    // the agent's records (its pid), and its session's end (its tap)
    const own = { pids: [pid], taps: nics.map((n) => n.tap) };
    let records = await recordsAfter(mark, own, 1);
    assert.is(records.length, 1, `${context}: make-nics: ${JSON.stringify(records)}`);
    assert.is(records[0]!['result'], 'ok');
    assert.equal(records[0]!['taps'], nics);

    // a request that claims to be root: refused, and audited as the real caller
    mark = helper.auditMark();
    const claim = b().id();
    assertError(await agent.ask(conn, { v: 1, id: claim, op: 'make-nics', bridges: ['br0'], uid: 0, user: 'root', pid: 1 }), 'BAD_REQUEST', claim, `${context}: claims root`);
    const bad = b().id();
    assertError(await agent.ask(conn, { v: 1, id: bad, op: 'make-nics', bridges: ['br0;id'] }), 'BAD_NAME', bad, `${context}: bad name`);
    const unknown = b().id();
    assertError(await agent.ask(conn, { v: 1, id: unknown, op: 'become-root' }), 'UNKNOWN_OP', unknown, `${context}: unknown op`);
    records = await recordsAfter(mark, own, 3);
    assert.equal(records.map((r) => r['code']), ['BAD_REQUEST', 'BAD_NAME', 'UNKNOWN_OP'], `${context}: ${JSON.stringify(records)}`);

    // broken framing after requests were served on this connection: closed, audited as the caller
    mark = helper.auditMark();
    await agent.send(conn, rawFrame(Buffer.from([0xc1])));
    assertError(await agent.next(conn), 'BAD_FRAME', 0, `${context}: garbage frame`);
    const closed = await agent.next(conn);
    assert.is(closed.kind, 'closed', `${context}: the connection is closed after garbage`);
    await agent.close(conn);
    records = await recordsAfter(mark, own, 2);
    assert.equal(records.map((r) => r.event), ['connection', 'session-end'], `${context}: ${JSON.stringify(records)}`);
    // the session-end is the last thing this connection causes: nothing else of it came in between
    assert.equal(ownRecords(helper.auditSince(first), own).map((r) => `${r.event}:${String(r['code'] ?? r['result'])}`),
      ['request:ok', 'request:BAD_REQUEST', 'request:BAD_NAME', 'request:UNKNOWN_OP', 'connection:BAD_FRAME', 'session-end:ok'], context);

    const all = helper.audit().filter((r) => ['request', 'connection', 'session-end'].includes(r.event)
      && (uidOf(r) === agent.user.uid || pidOf(r) === pid));
    assert.ok(all.length >= 6, `${context}: records of this user: ${JSON.stringify(all)}`);
    for (const r of all) {
      assert.is(uidOf(r), agent.user.uid, `${context}: uid in ${JSON.stringify(r)}`);
      if (r.event === 'request') assert.is(pidOf(r), pid, `${context}: pid in ${JSON.stringify(r)}`);
    }
  }
  // only the two users connected: nothing is attributed to uid 0 (the helper's own, or the one claimed)
  assert.equal(helper.audit().filter((r) => uidOf(r) === 0), []);
});

test('a broken frame sent before any request is audited with the caller\'s uid from the kernel', async () => {
  const { helper } = b();
  const broken: Array<[string, Buffer]> = [
    ['length 0', Buffer.from([0, 0, 0, 0])],
    ['length 0xFFFFFFFF', Buffer.from([0xff, 0xff, 0xff, 0xff])],
    ['not msgpack', rawFrame(Buffer.from([0xc1]))],
    ['a top-level array', frameOf(['make-nics'])],
  ];
  const first = helper.auditMark();
  const pids: number[] = [];
  for (const agent of agents) {
    for (const [what, bytes] of broken) {
      const context = `${agent.user.name}: ${what}`;
      const conn = `${agent.user.name}-${what}`;
      const { pid } = await agent.open(conn, helper.socket);
      pids.push(pid);
      const mark = helper.auditMark();
      await agent.send(conn, bytes);
      assertError(await agent.next(conn), 'BAD_FRAME', 0, context);
      await agent.close(conn);
      const records = await recordsAfter(mark, { pids: [pid] }, 1);
      assert.is(records.length, 1, `${context}: ${JSON.stringify(records)}`);
      assert.is(records[0]!.event, 'connection');
      assert.is(uidOf(records[0]!), agent.user.uid, `${context}: the record does not say who: ${JSON.stringify(records[0])}`);
    }
  }
  // a request of root's after all of them: once its records are in, so are any late ones of the agents
  await stillServes(b(), 'after the broken frames');
  const all = ownRecords(helper.auditSince(first), { pids });
  assert.equal(all.map((r) => `${r.event}:${String(r['code'])}`), Array(agents.length * broken.length).fill('connection:BAD_FRAME'), JSON.stringify(all));
});

test.run();
