/**
 * Issue 12, item 2: `xkvm-helper status [--json] [--user U]` lists every tap the helpers made that
 * still exists, from the ledger and the session records: a held session's tap with its session
 * and client, a persistent tap with the grants the policy gave it (queues, mac-lock), a tap its
 * user gave away still listed under its creator (and who owns it now). Real helper, real users,
 * the CLI itself, as root.
 */
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Reply } from '../../../shared/src/protocol/messages.js';
import { HELPER_MAIN, makeScratch, startSocketHelper, stop, type Scratch, type Watched } from '../../support/helper-proc.js';
import { createNetns, createTestUser, removeTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { frame, pyClient, replyOf } from '../../support/fd-client.js';
import { giveTapAway, tunDevices } from '../../support/taps.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';
import { Agent } from '../server/support.js';

const MAC = '52:54:00:5a:7a:01';

let ns: Netns;
let alice: TestUser;
let bob: TestUser;
let scratch: Scratch;
let helper: Watched;
let agent: Agent;
let sessionTap = '';
let lockedTap = '';
let givenTap = '';
let clientPid = 0;

function tapOf(reply: Reply, i = 0): string {
  if (!reply.ok || !('nics' in reply)) throw new Error(`expected taps, got ${JSON.stringify(reply)}`);
  return reply.nics[i]!.tap;
}

async function ask(conn: string, value: object): Promise<Reply> {
  const next = await agent.ask(conn, value);
  if (next.kind !== 'reply') throw new Error(`no reply: ${JSON.stringify(next)}`);
  return next.reply;
}

test.before(async () => {
  if (process.geteuid?.() !== 0) throw new Error('this suite must run as root: it starts the helper and runs ordinary users');
  sweepStaleNetns();
  alice = createTestUser('sa');
  bob = createTestUser('sb');
  ns = createNetns({ bridges: ['br0', 'br1'] });
  scratch = makeScratch('st');
  const config = scratch.policy([`allow br0 ${alice.name}`, `allow br1 ${alice.name}`, `mac-lock br1 ${alice.name}`, `max-queues 4 ${alice.name}`]);
  helper = await startSocketHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket });
  agent = Agent.start(ns, alice);
  clientPid = (await agent.open('session', scratch.socket)).pid;
  await agent.open('script', scratch.socket);
  sessionTap = tapOf(await ask('session', { v: 1, id: 1, op: 'make-nics', bridges: ['br0'] }));
  lockedTap = tapOf(await ask('script', { v: 1, id: 2, op: 'make-nics', nics: [{ bridge: 'br1', queues: 2, mac: MAC }], lifetime: 'persistent' }));
  givenTap = tapOf(await ask('script', { v: 1, id: 3, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }));
  giveTapAway(ns, alice.name, givenTap, bob.uid);
});

test.after(async () => {
  await agent?.stop();
  if (helper !== undefined) await stop(helper);
  for (const name of tunDevices(ns).keys()) ns.ip('link', 'del', name);
  ns?.destroy();
  scratch?.remove();
  for (const u of [alice, bob]) if (u !== undefined) removeTestUser(u);
});

function status(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return ns.exec([process.execPath, HELPER_MAIN, 'status', '--state-dir', scratch.state, ...args]);
}

interface Row { tap: string; bridge: string; type: string; uid: number; user: string | null; lifetime: string; since?: string; session?: string; client?: number; owner?: number; mtu?: number; queues?: number; mac?: string }

function json(...args: string[]): Row[] {
  const r = status('--json', ...args);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, r.stdout);
  return (JSON.parse(lines[0]!) as { taps: Row[] }).taps;
}

test('--json lists the three taps, oldest first: the held session\'s with its session and client, the locked one with its grants, the given one under its creator', () => {
  const taps = json();
  assert.equal(taps.map((t) => t.tap), [sessionTap, lockedTap, givenTap]);
  const [session, locked, given] = taps as [Row, Row, Row];
  assert.equal([session.bridge, session.type, session.uid, session.user, session.lifetime], ['br0', 'brctl', alice.uid, alice.name, 'session']);
  assert.match(session.session ?? '', /^[0-9a-f]{16}$/);
  assert.is(session.client, clientPid, 'the session\'s client pid');
  assert.is(session.mtu, 1500);
  assert.match(session.since ?? '', /^20\d\d-\d\d-\d\dT/);
  assert.equal([locked.bridge, locked.lifetime, locked.queues, locked.mac], ['br1', 'persistent', 2, MAC]);
  assert.is(locked.session, undefined);
  assert.equal([given.uid, given.user, given.owner], [alice.uid, alice.name, bob.uid], 'listed under its creator, with its owner now');
  assert.is(session.owner, undefined, 'a tap still its creator\'s has no owner field');
});

test('--user narrows the list to the taps a user\'s requests made: bob, who owns one, made none', () => {
  assert.is(json('--user', alice.name).length, 3);
  assert.equal(json('--user', String(alice.uid)).map((t) => t.tap), json('--user', alice.name).map((t) => t.tap));
  assert.equal(json('--user', bob.name), []);
});

test('the plain form is a table, one tap a line under a header, grants and notes last', () => {
  const r = status();
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^TAP\s+BRIDGE\s+TYPE\s+USER\s+LIFETIME\s+SINCE\s+SESSION\s+CLIENT\s+MTU\s+GRANTS AND NOTES$/);
  assert.is(lines.length, 4);
  assert.match(lines[2]!, new RegExp(`^${lockedTap}\\s+br1\\s+brctl\\s+${alice.name}\\(${alice.uid}\\)\\s+persistent\\s+\\S+\\s+-\\s+-\\s+1500\\s+queues=2 mac-lock=${MAC}$`));
  assert.match(lines[3]!, new RegExp(`owned by uid ${bob.uid} now$`));
});

test('a tap handed over by fd is listed as lifetime fd while its fds are held, and not once they are closed', async () => {
  const client = pyClient(ns, alice.name, { connect: scratch.socket, hold: true, hangUp: true, requests: [frame({ v: 1, id: 9, op: 'make-nics', bridges: ['br0'], handoff: 'fd' })] });
  try {
    const reply = replyOf((await client.report()).replies[0]?.frame ?? '');
    const tap = tapOf(reply);
    const row = json().find((t) => t.tap === tap);
    assert.equal([row?.lifetime, row?.uid, row?.session, row?.client], ['fd', alice.uid, undefined, undefined]);
    await client.closeFds();
    await waitFor(() => !json().some((t) => t.tap === tap), PATIENCE_MS, { what: 'the closed fd tap to leave the list' });
  } finally {
    await client.end();
  }
});

test('an ordinary user is told status is root\'s business (exit 4, one line), not shown a stack', () => {
  const r = ns.exec([process.execPath, HELPER_MAIN, 'status', '--state-dir', scratch.state], { user: alice.name });
  assert.is(r.status, 4, r.stderr);
  assert.is(r.stdout, '');
  assert.is(r.stderr, `xkvm-helper: status reads the helpers' ledger and session records in ${scratch.state}, which are root's alone: run it as root\n`);
});

test('a tap that is gone is not listed; with no taps at all the table says so', async () => {
  ns.ip('link', 'del', givenTap);
  assert.equal(json().map((t) => t.tap), [sessionTap, lockedTap]);
  const empty = ns.exec([process.execPath, HELPER_MAIN, 'status', '--state-dir', join(scratch.dir, 'no-such-state')]);
  assert.is(empty.status, 0, empty.stderr);
  assert.is(empty.stdout, 'no taps made by the helpers exist now\n');
});

test.run();
