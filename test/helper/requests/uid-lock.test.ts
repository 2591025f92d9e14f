/**
 * A stopped helper blocks only its own user (issue 9, attack 5): the lock a helper holds while it
 * counts, records and makes taps is per uid (<state dir>/ledger/<uid>.lock), not one for the
 * host. Replayed for real: two helpers on one state directory, as a socket-activated helper and a
 * pkexec'd one share /run/xkvm/sessions; one is stopped (as ^Z stops a pkexec'd helper in its
 * user's terminal) in the middle of making alice's tap, holding alice's lock. bob is served by
 * the other helper at once; alice's request there waits for her lock, then fails alone with
 * SYSTEM_ERROR naming it; and once the stopped helper goes on, it finishes what it was doing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Reply } from '../../../shared/src/protocol/messages.js';
import type { Netns, TestUser } from '../../support/netns.js';
import { makeScratch, startSocketHelper, stop, type Watched } from '../../support/helper-proc.js';
import { descendants, signal } from '../../support/procs.js';
import { present } from '../../support/taps.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';
import { Agent } from '../server/support.js';
import { twoUsersOnBr0 } from '../lifecycle/support.js';

let ns: Netns;
let alice: TestUser;
let bob: TestUser;

twoUsersOnBr0(test, (made) => ({ ns, alice, bob } = made));

/** Whether `pid` holds an flock (from /proc/locks: `N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF`). */
function holdsFlock(pid: number): boolean {
  return readFileSync('/proc/locks', 'utf8').split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === 'FLOCK' && f[4] === String(pid);
  });
}

function replyOf(next: { kind: string; reply?: Reply }): Reply {
  if (next.kind !== 'reply' || next.reply === undefined) throw new Error(`no reply: ${JSON.stringify(next)}`);
  return next.reply;
}

test('a helper stopped while it holds alice\'s lock delays nobody else: bob is served by another helper at once, alice there fails alone naming her lock', async () => {
  const scratch = makeScratch('ul');
  const helpers: Watched[] = [];
  const agents: Agent[] = [];
  const stopped: number[] = [];
  const made: string[] = [];
  try {
    const config = scratch.policy([`allow br0 ${alice.name} ${bob.name}`]);
    const other = join(scratch.dir, 'two.sock');
    const stuck = await startSocketHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket });
    const serving = await startSocketHelper(ns, { config, stateDir: scratch.state, socket: other });
    helpers.push(stuck, serving);
    const a = Agent.start(ns, alice);
    const b = Agent.start(ns, bob);
    agents.push(a, b);

    // The stuck helper's ips exist once it has made a tap; stop them, so that its next batch
    // waits (holding alice's lock), then stop the helper itself there.
    await a.open('warm', scratch.socket);
    const warm = replyOf(await a.ask('warm', { v: 1, id: 1, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }));
    assert.ok(warm.ok && 'nics' in warm, JSON.stringify(warm));
    made.push(...(warm.ok && 'nics' in warm ? warm.nics.map((n) => n.tap) : []));
    const ips = descendants(stuck.pid).filter((p) => p.comm === 'ip').map((p) => p.pid);
    assert.ok(ips.length > 0, 'the helper runs its ip');
    for (const pid of ips) signal(pid, 'SIGSTOP');
    stopped.push(...ips);
    const pending = a.ask('warm', { v: 1, id: 2, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }, 120_000);
    pending.catch(() => undefined); // awaited below; a failure before then must not end the run
    await waitFor(() => holdsFlock(stuck.pid), PATIENCE_MS, { what: 'the stuck helper to hold a lock' });
    signal(stuck.pid, 'SIGSTOP');
    stopped.push(stuck.pid);

    // The other helper: bob's request and alice's, at once.
    await b.open('b', other);
    await a.open('a', other);
    const order: string[] = [];
    const bobs = b.ask('b', { v: 1, id: 3, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }, 60_000).then((n) => { order.push('bob'); return replyOf(n); });
    const alices = a.ask('a', { v: 1, id: 4, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }, 60_000).then((n) => { order.push('alice'); return replyOf(n); });
    alices.catch(() => undefined);
    const bobReply = await bobs;
    assert.ok(bobReply.ok, `bob is served while alice's lock is held: ${JSON.stringify(bobReply)}`);
    made.push(...(bobReply.ok && 'nics' in bobReply ? bobReply.nics.map((n) => n.tap) : []));
    const aliceReply = await alices;
    assert.equal(order, ['bob', 'alice']);
    assert.ok(!aliceReply.ok && aliceReply.error.code === 'SYSTEM_ERROR', `alice, while her lock is held: ${JSON.stringify(aliceReply)}`);
    assert.match(!aliceReply.ok ? aliceReply.error.message : '', new RegExp(`ledger/${alice.uid}\\.lock`));

    // The stuck helper goes on and answers (its ip's deadline may have passed meanwhile); then
    // alice's lock is free again and the other helper serves her.
    for (const pid of stopped.splice(0)) signal(pid, 'SIGCONT');
    const finished = replyOf(await pending);
    made.push(...(finished.ok && 'nics' in finished ? finished.nics.map((n) => n.tap) : []));
    const later = replyOf(await a.ask('a', { v: 1, id: 5, op: 'make-nics', bridges: ['br0'], lifetime: 'persistent' }));
    assert.ok(later.ok && 'nics' in later, JSON.stringify(later));
    made.push(...later.nics.map((n) => n.tap));
  } finally {
    for (const pid of stopped) signal(pid, 'SIGCONT');
    for (const agent of agents) await agent.stop();
    for (const h of helpers) await stop(h);
    for (const t of present(ns, made)) ns.ip('link', 'del', t);
    scratch.remove();
  }
});

test.run();
