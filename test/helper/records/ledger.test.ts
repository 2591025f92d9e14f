/**
 * Who made it counts (issue 9, attack 1; design.md "Who made it counts"), replayed for real:
 * ordinary users, a real helper in a network namespace, and the kernel's own tap ioctls. The
 * owner of a tap may give it to any uid (TUNSETOWNER needs no privilege from the owner); that
 * must neither free the giver's max-taps nor charge the receiver, and a session tap given away
 * is still removed when its session ends, with an audit record that says so truthfully.
 *
 * And what a crash leaves between creating taps and recording them: a helper killed right after
 * ip made a tap, before it wrote the tap's ifindex, leaves the intent it wrote before; the next
 * helper to take that user's lock finds the tap, counts it and removes it, whoever owns it now.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Reply } from '../../../shared/src/protocol/messages.js';
import type { Netns, TestUser } from '../../support/netns.js';
import { HELPER_MAIN, makeScratch, startSocketHelper, stop, type Scratch, type Watched } from '../../support/helper-proc.js';
import { descendants, signal } from '../../support/procs.js';
import { giveTapAway, present, tunDevices } from '../../support/taps.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';
import { Agent } from '../server/support.js';
import { twoUsersOnBr0 } from '../lifecycle/support.js';

let ns: Netns;
let alice: TestUser;
let bob: TestUser;

twoUsersOnBr0(test, (made) => ({ ns, alice, bob } = made));

function giveAway(from: TestUser, tap: string, to: TestUser): void {
  giveTapAway(ns, from.name, tap, to.uid);
  assert.is(tunDevices(ns).get(tap)?.owner, to.name, `${tap} now belongs to ${to.name}`);
}

let ids = 0;

async function ask(agent: Agent, conn: string, lifetime: 'session' | 'persistent'): Promise<Reply> {
  ids += 1;
  const next = await agent.ask(conn, { v: 1, id: ids, op: 'make-nics', bridges: ['br0'], lifetime });
  if (next.kind !== 'reply') throw new Error(`no reply: ${JSON.stringify(next)}`);
  return next.reply;
}

function tapOf(reply: Reply): string {
  if (!reply.ok || !('nics' in reply)) throw new Error(`expected a tap, got ${JSON.stringify(reply)}`);
  return reply.nics[0]!.tap;
}

interface Fixture {
  scratch: Scratch;
  helpers: Watched[];
  agents: Agent[];
}

async function tearDown(f: Fixture, taps: readonly string[]): Promise<void> {
  for (const a of f.agents) await a.stop();
  for (const h of f.helpers) await stop(h);
  for (const t of present(ns, [...taps])) ns.ip('link', 'del', t);
  f.scratch.remove();
}

test('a user who gives every new tap away is still refused at max-taps, the one given them is not charged, and a session tap given away goes when its session ends', async () => {
  const f: Fixture = { scratch: makeScratch('lg'), helpers: [], agents: [] };
  const made: string[] = [];
  try {
    const config = f.scratch.policy([`allow br0 ${alice.name} ${bob.name}`, 'max-taps 4']);
    const helper = await startSocketHelper(ns, { config, stateDir: f.scratch.state, socket: f.scratch.socket });
    f.helpers.push(helper);
    const attacker = Agent.start(ns, alice);
    const victim = Agent.start(ns, bob);
    f.agents.push(attacker, victim);
    await attacker.open('session', f.scratch.socket);
    await attacker.open('script', f.scratch.socket);
    await victim.open('v', f.scratch.socket);

    // One session tap and three persistent ones, each given to bob as soon as it is made.
    const sessionTap = tapOf(await ask(attacker, 'session', 'session'));
    made.push(sessionTap);
    giveAway(alice, sessionTap, bob);
    for (let i = 0; i < 3; i += 1) {
      const tap = tapOf(await ask(attacker, 'script', 'persistent'));
      made.push(tap);
      giveAway(alice, tap, bob);
    }
    assert.equal([...tunDevices(ns).values()].filter((d) => d.owner === alice.name), [], 'alice owns none of them now');

    // alice made four: the fifth is refused, however many she has given away.
    const fifth = await ask(attacker, 'script', 'persistent');
    assert.ok(!fifth.ok && fifth.error.code === 'QUOTA', `alice's fifth tap: ${JSON.stringify(fifth)}`);
    assert.match(!fifth.ok ? fifth.error.message : '', /holds 4 tap\(s\).*max-taps 4/);
    // policy check (as root) counts the same way: alice's four, none of them bob's.
    const check = (who: TestUser, as?: TestUser): string => {
      const r = ns.exec([process.execPath, HELPER_MAIN, 'policy', 'check', '--config', config, '--user', who.name, '--bridge', 'br0', '--state-dir', f.scratch.state],
        as === undefined ? {} : { user: as.name });
      assert.is(r.status, 0, r.stderr);
      return r.stdout;
    };
    assert.match(check(alice), '\ntaps: 4 of 4 in use, 0 left\n');
    assert.match(check(bob), '\ntaps: 0 of 4 in use, 4 left\n');
    assert.match(check(alice, alice), `\ntaps: unknown (the ledger in ${f.scratch.state} is root's: run this as root to see it)\n`);

    // bob owns four taps he never asked for: they do not count against him.
    const bobs = await ask(victim, 'v', 'persistent');
    assert.ok(bobs.ok, `bob's request: ${JSON.stringify(bobs)}`);
    made.push(tapOf(bobs));

    // alice's session ends: its tap goes although bob owns it now, and the record says so.
    await attacker.close('session');
    const ended = await helper.audit((a) => a.event === 'session-end' && JSON.stringify(a['taps']).includes(sessionTap), PATIENCE_MS, 'the session-end record');
    assert.equal(present(ns, [sessionTap]), [], 'the session tap given away is gone with its session');
    assert.is(ended['result'], 'ok');
    assert.is(ended['uid'], alice.uid);
    assert.equal(f.scratch.records(), [], 'the session record is removed');

    // Three of alice's four remain (given away or not): one more is hers.
    const again = await ask(attacker, 'script', 'persistent');
    assert.ok(again.ok, `alice, after her session ended: ${JSON.stringify(again)}`);
    made.push(tapOf(again));
    const over = await ask(attacker, 'script', 'persistent');
    assert.ok(!over.ok && over.error.code === 'QUOTA', JSON.stringify(over));
  } finally {
    await tearDown(f, made);
  }
});

test('taps a helper made and was killed before recording are found under the user\'s lock, counted, and removed, even given away', async () => {
  const f: Fixture = { scratch: makeScratch('lc'), helpers: [], agents: [] };
  const stopped: number[] = [];
  let orphan: string | undefined;
  try {
    const config = f.scratch.policy([`allow br0 ${alice.name} ${bob.name}`, `max-taps 1 ${alice.name}`]);
    const first = await startSocketHelper(ns, { config, stateDir: f.scratch.state, socket: f.scratch.socket });
    const second = await startSocketHelper(ns, { config, stateDir: f.scratch.state, socket: join(f.scratch.dir, 'two.sock') });
    f.helpers.push(first, second);
    const user = Agent.start(ns, alice);
    const other = Agent.start(ns, bob);
    f.agents.push(user, other);

    // The first helper's long-lived ips exist once it has made and removed a tap.
    await other.open('warm', f.scratch.socket);
    const warm = tapOf(await ask(other, 'warm', 'session'));
    await other.close('warm');
    await waitFor(() => present(ns, [warm]).length === 0, PATIENCE_MS, { what: 'the warm-up tap to go' });
    const ips = descendants(first.pid).filter((p) => p.comm === 'ip').map((p) => p.pid);
    assert.ok(ips.length > 0, 'the helper runs its ip');
    for (const pid of ips) signal(pid, 'SIGSTOP');
    stopped.push(...ips);

    // alice asks; the helper records its intent and writes the batch to its (stopped) ip.
    await user.open('a', f.scratch.socket);
    void user.ask('a', { v: 1, id: 99, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }).catch(() => undefined);
    const ledgerFile = join(f.scratch.state, 'ledger', `${alice.uid}.json`);
    const { value: intent } = await waitFor(() => {
      const entries = (JSON.parse(readFileSync(ledgerFile, 'utf8')) as { entries: { tap: string; ifindex?: number }[] }).entries;
      return entries.find((e) => e.ifindex === undefined);
    }, PATIENCE_MS, { what: 'alice\'s intent in the ledger' });
    orphan = intent.tap;
    // The helper stops there for good; ip makes the tap; then the helper is killed.
    signal(first.pid, 'SIGSTOP');
    stopped.push(first.pid);
    for (const pid of ips) signal(pid, 'SIGCONT');
    await waitFor(() => present(ns, [intent.tap]).length === 1, PATIENCE_MS, { what: `ip to make ${intent.tap}` });
    signal(first.pid, 'SIGKILL');
    await first.exited;
    giveAway(alice, intent.tap, bob);

    // The second helper takes alice's lock: the tap is hers, counted, then removed.
    await user.open('b', join(f.scratch.dir, 'two.sock'));
    const refused = await ask(user, 'b', 'persistent');
    assert.ok(!refused.ok && refused.error.code === 'QUOTA', `the orphan counts for alice: ${JSON.stringify(refused)}`);
    const removed = await second.audit((a) => a.event === 'orphans-removed', PATIENCE_MS, 'the orphan to be removed');
    assert.is(removed['result'], 'ok');
    assert.is(removed['uid'], alice.uid);
    assert.ok(JSON.stringify(removed['taps']).includes(intent.tap));
    assert.equal(present(ns, [intent.tap]), [], 'the orphan is gone');
    const next = await ask(user, 'b', 'persistent');
    assert.ok(next.ok, JSON.stringify(next));
    orphan = tapOf(next);
  } finally {
    for (const pid of stopped) signal(pid, 'SIGCONT');
    await tearDown(f, orphan === undefined ? [] : [orphan]);
  }
});

test.run();
