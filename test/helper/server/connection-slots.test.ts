// Issue 9, attack 2: holding every connection slot. An ordinary user opens 256 connections to the
// real helper and sends nothing on them. The helper must refuse at once every connection of that
// user's beyond its max-connections (16 by default) with a QUOTA reply naming the limit, keep
// serving another user, close the idle connections that hold no taps after the grace (5 s), and
// keep a connection that holds a session tap open however idle. A socket-activated helper must
// still exit when idle while the attacker holds its connections open.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from '../../support/netns.js';
import { makeScratch, startActivatedHelper, stop, type Watched } from '../../support/helper-proc.js';
import { within } from '../../support/wait.js';
import {
  Agent, assertNics, closeBench, fail, links, makeNicsRequest, openBench, PATIENCE_MS, startHostile, type Bench, type Hostile, type HostileEvent,
} from './support.js';

const ATTEMPTS = 256;
const LIMIT = 16;

let bench: Bench | undefined;
let users: [TestUser, TestUser] | undefined;
const b = (): Bench => bench ?? fail('no bench');
const u = (): [TestUser, TestUser] => users ?? fail('no users');

test.before(async () => {
  users = [createTestUser('atk'), createTestUser('vic')];
  // A grace of 8 s rather than 5: opening the 256 connections must not outlast it even on a
  // loaded machine, or a slot freed meanwhile would admit a later one.
  bench = await openBench({ policy: `allow br0 root ${users[0].name} ${users[1].name}\n`, args: ['--idle-connection-seconds', '8'] });
});

test.after(async () => {
  await closeBench(bench);
  for (const user of users ?? []) removeTestUser(user);
});

const replies = (events: readonly HostileEvent[]): HostileEvent[] => events.filter((e) => e.event === 'reply');
const closedSet = (events: readonly HostileEvent[]): Set<number> => new Set(events.filter((e) => e.event === 'closed').map((e) => e.i!));

test(`a user holding ${ATTEMPTS} idle connections gets ${LIMIT}, the rest refused with QUOTA naming max-connections; another user is served; idle ones close after the grace, the one holding a tap stays`, async () => {
  const { ns, helper } = b();
  const [attacker, victim] = u();
  let hostile: Hostile | undefined;
  let agent: Agent | undefined;
  try {
    // connection 0 takes a session tap first, then 255 more connections send nothing
    hostile = startHostile(ns, attacker, { mode: 'hold', socket: helper.socket, count: ATTEMPTS, tap: true });
    const h = hostile;
    await h.until('all connections to be opened', (e) => e.some((x) => x.event === 'opened'));
    const refusedNow = (e: readonly HostileEvent[]): HostileEvent[] => replies(e).filter((r) => r['code'] === 'QUOTA');
    let events = await h.until(`${ATTEMPTS - LIMIT} connections to be refused and closed`, (e) => {
      const closed = closedSet(e);
      const refused = refusedNow(e);
      return refused.length >= ATTEMPTS - LIMIT && refused.every((r) => closed.has(r.i!));
    });
    const refused = refusedNow(events);
    assert.is(refused.length, ATTEMPTS - LIMIT, 'exactly the connections beyond the limit are refused');
    const tapReply = replies(events).find((r) => r.i === 0) ?? fail('no reply to the make-nics of the first connection');
    assert.ok(tapReply['ok'] === true, `the first connection got its tap: ${JSON.stringify(tapReply)}`);
    // the refused ones are those accepted last: the first LIMIT stay
    assert.equal(refused.map((r) => r.i).sort((x, y) => x! - y!), Array.from({ length: ATTEMPTS - LIMIT }, (_, k) => k + LIMIT));
    for (const r of refused) {
      assert.match(String(r['message']), /max-connections/, JSON.stringify(r));
      assert.match(String(r['message']), new RegExp(`\\b${LIMIT}\\b`), JSON.stringify(r));
    }
    assert.ok(helper.alive());

    // the attacker holds all of its slots: another user is served all the same
    agent = Agent.start(ns, victim);
    await agent.open('v', helper.socket);
    const id = b().id();
    const nics = assertNics(await agent.ask('v', makeNicsRequest(id)), id, ['br0'], ns, 'the other user');
    await agent.close('v');

    // the idle connections that hold no tap are closed by the helper (no reply: none was asked)
    const idle = Array.from({ length: LIMIT - 1 }, (_, k) => k + 1);
    events = await h.until('the idle connections to be closed by the helper', (e) => idle.every((i) => closedSet(e).has(i)));
    assert.equal(replies(events).filter((r) => idle.includes(r.i!)), [], 'the idle connections were sent nothing');
    // the session holding a tap was idle longer than all of them, and is still open
    assert.not.ok(closedSet(events).has(0), 'the connection holding a session tap was closed');
    const tap = (tapReply['nics'] as Array<{ tap: string }>)[0]!.tap;
    assert.ok(links(ns).includes(tap), `the attacker's session tap ${tap} is gone: ${links(ns).join(' ')}`);
    assert.not.ok(links(ns).includes(nics[0]!.tap), 'the other user\'s session ended with its connection');
    assert.ok(helper.alive());
  } finally {
    hostile?.release();
    if (hostile !== undefined) await stop(hostile);
    await agent?.stop();
  }
});

test('the audit names the refused connections with the attacker\'s uid from the kernel', () => {
  const { helper } = b();
  const [attacker] = u();
  const refused = helper.audit().filter((r) => r.event === 'connection' && r['result'] === 'refused');
  assert.ok(refused.length > 0, 'refusals are audited');
  for (const r of refused) {
    assert.is(r['uid'], attacker.uid, JSON.stringify(r));
    assert.is(r['code'], 'QUOTA');
  }
});

test('a socket-activated helper whose connections are all held idle by one user still exits when idle', async () => {
  const [attacker] = u();
  const ns: Netns = createNetns({ bridges: ['br0'] });
  const scratch = makeScratch('slot');
  let helper: Watched | undefined;
  let hostile: Hostile | undefined;
  try {
    const config = scratch.policy([`allow br0 ${attacker.name}`]);
    helper = await startActivatedHelper(ns, {
      config, stateDir: scratch.state, socket: scratch.socket, idleSeconds: 1, args: ['--idle-connection-seconds', '1'],
    });
    // the first connection starts the helper; the client holds all of them until told
    hostile = startHostile(ns, attacker, { mode: 'hold', socket: scratch.socket, count: ATTEMPTS });
    const h = hostile;
    await helper.audit((a) => a.event === 'helper-start', PATIENCE_MS, 'the helper to start');
    const exit = await within(helper.exited, PATIENCE_MS, 'the helper to exit while the attacker holds its connections');
    assert.is(exit.code, 0, helper.stderr());
    assert.ok(helper.audits.some((a) => a.event === 'helper-exit'), JSON.stringify(helper.audits.slice(-3)));
    // the attacker never let go: the helper closed every one of its connections itself
    assert.is(h.exit(), undefined, 'the attacker is still running');
    const events = await h.until('every connection to be closed', (e) => e.some((x) => x.event === 'opened') && closedSet(e).size === ATTEMPTS);
    assert.is(replies(events).filter((r) => r['code'] === 'QUOTA').length, ATTEMPTS - LIMIT);
  } finally {
    hostile?.release();
    if (hostile !== undefined) await stop(hostile);
    if (helper !== undefined) await stop(helper);
    scratch.remove();
    ns.destroy();
  }
});

test.run();
