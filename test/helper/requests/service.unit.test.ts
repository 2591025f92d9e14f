// The service with a stand-in network layer (the NetOps boundary) and a real ledger in a
// temporary directory (locks kept in memory): how max-taps counts by the ledger (who made a tap,
// not who owns it now), taps being removed, the per-uid locks, how requests that arrive together
// are batched, what a crash between creating and recording leaves, and ovs-cleanup's standing.
// Real taps, users and helpers are covered by test/helper/records/ledger.test.ts, the lock and
// standing suites beside this one, test/helper/net and the lifecycle suites.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { MakeNicsRequest, NicRequest, Reply } from '../../../shared/src/protocol/messages.js';
import type { Caller } from '../../../helper/src/identity/caller.js';
import { PolicyHolder } from '../../../helper/src/policy/holder.js';
import { acceptAnyFile } from '../policy/support.js';
import { MAX_BATCH, Service, type ServiceDeps, type Session } from '../../../helper/src/requests/service.js';
import { closeFds } from '../../../helper/src/net/fdtaps.js';
import { Ledger, type LedgerEntry } from '../../../helper/src/records/ledger.js';
import { SessionStore } from '../../../helper/src/records/store.js';
import { caller, MemoryAudit, MemoryLocks, StandInHost } from './stand-ins.js';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-service-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const HELPER = { pid: process.pid, start: '1' };
/** No process has this pid (above any pid_max): a helper that died. */
const DEAD = { pid: 99_999_999, start: '1' };

interface Bench {
  service: Service;
  host: StandInHost;
  audit: MemoryAudit;
  ledger: Ledger;
  locks: MemoryLocks;
  state: string;
  /** Another service on the same state (another helper process). */
  other(): Service;
}

function setUp(policy: string, opts: Pick<ServiceDeps, 'lockWaitMs' | 'linkWatch'> = {}): Bench {
  const file = join(dir, `helper-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, policy, { mode: 0o644 });
  const state = mkdtempSync(join(dir, 'state-'));
  const host = new StandInHost();
  const audit = new MemoryAudit();
  const locks = new MemoryLocks();
  const ledger = new Ledger(state, { lock: locks.lock });
  const make = (): Service => new Service({
    policy: new PolicyHolder(file, { checkFile: acceptAnyFile }), net: host, audit, store: new SessionStore(state), ledger,
    helper: HELPER, log: () => undefined, ...opts,
  });
  return { service: make(), host, audit, ledger, locks, state, other: make };
}

const alice = caller('alice', 4101);
const bob = caller('bob', 4102);
const nobody = caller('nobody', 65534);
let sessions = 0;

function makeNics(service: Service, session: Session = newSession(), who: Caller = alice, bridges = ['br0'], lifetime: 'session' | 'persistent' = 'session'): Promise<Reply> {
  return service.handle({ v: 1, id: 1, op: 'make-nics', nics: bridges.map((bridge) => ({ bridge })), lifetime }, who, session);
}

function newSession(): Session {
  sessions += 1;
  return { id: sessions.toString(16).padStart(16, '0'), nics: [] };
}

function tapsOf(reply: Reply): string[] {
  if (!reply.ok || !('nics' in reply)) throw new Error(`expected taps, got ${JSON.stringify(reply)}`);
  return reply.nics.map((n) => n.tap);
}

function codeOf(reply: Reply): string | true {
  return reply.ok || reply.error.code;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a tap still held counts against max-taps', async () => {
  const { service } = setUp('allow br0 alice\nmax-taps 1\n');
  const first = await makeNics(service);
  assert.ok(first.ok, JSON.stringify(first));
  const second = await makeNics(service);
  assert.is(codeOf(second), 'QUOTA');
});

test('a tap given away still counts for the user who asked for it, and not for its new owner', async () => {
  const { service, host } = setUp('allow br0 alice bob\nmax-taps 2\n');
  const given: string[] = [];
  for (let i = 0; i < 2; i += 1) {
    const [tap] = tapsOf(await makeNics(service, newSession(), alice, ['br0'], 'persistent'));
    host.giveAway(tap!, bob.uid);
    given.push(tap!);
  }
  assert.equal(host.owned(alice.uid), []);
  assert.is(host.owned(bob.uid).length, 2);
  assert.is(codeOf(await makeNics(service, newSession(), alice, ['br0'], 'persistent')), 'QUOTA');
  // bob "owns" two taps but made none: his two are his own.
  assert.is(codeOf(await makeNics(service, newSession(), bob, ['br0', 'br0'], 'persistent')), true);
  // Once one of alice's taps is gone (its new owner deleted it), she may have another.
  host.devices.delete(given[0]!);
  assert.is(codeOf(await makeNics(service, newSession(), alice, ['br0'], 'persistent')), true);
  assert.is(codeOf(await makeNics(service, newSession(), alice, ['br0'], 'persistent')), 'QUOTA');
});

test('a device that took a ledger tap\'s name later is not that tap: it is neither counted nor deleted', async () => {
  const { service, host, audit } = setUp('allow br0 alice\nmax-taps 1\n');
  const session = newSession();
  const [tap] = tapsOf(await makeNics(service, session));
  // The tap goes (its owner deleted it) and root makes another device under that name.
  host.devices.delete(tap!);
  host.add(tap!, 0);
  assert.is(codeOf(await makeNics(service)), true, 'the old entry no longer counts');
  await service.endSession(session, alice, 'the client left');
  assert.ok(host.devices.has(tap!), 'the new device of that name is left alone');
  assert.not.ok(host.events.includes(`delete ${tap!}`));
  const ended = audit.records.find((r) => r.event === 'session-end');
  assert.is(ended?.['result'], 'ok', 'the session\'s tap is gone');
});

test('a session tap given away is still deleted when the session ends, and the record says ok only once it is gone', async () => {
  const { service, host, audit, state } = setUp('allow br0 alice bob\n');
  const session = newSession();
  const [tap] = tapsOf(await makeNics(service, session));
  host.giveAway(tap!, bob.uid);
  await service.endSession(session, alice, 'the client left');
  assert.not.ok(host.devices.has(tap!));
  const ended = audit.records.find((r) => r.event === 'session-end');
  assert.is(ended?.['result'], 'ok');
  assert.not.ok(existsSync(join(state, `${session.id}.json`)));
});

test('a session tap that cannot be deleted is an audited error, never ok, and its session record stays for the next helper', async () => {
  const { service, host, audit, state } = setUp('allow br0 alice\n');
  const session = newSession();
  const [tap] = tapsOf(await makeNics(service, session));
  host.undeletable.add(tap!);
  await service.endSession(session, alice, 'the client left');
  assert.ok(host.devices.has(tap!));
  const ended = audit.records.find((r) => r.event === 'session-end');
  assert.is(ended?.['result'], 'error');
  assert.match(String(ended?.['message']), new RegExp(`could not remove ${tap!}`));
  assert.ok(existsSync(join(state, `${session.id}.json`)));
});

test('taps the helper is removing no longer count, and a finished removal leaves the count right', async () => {
  const { service, host } = setUp('allow br0 alice\nmax-taps 1\n');
  const old = newSession();
  assert.ok((await makeNics(service, old)).ok);
  host.holdRemovals();
  const ending = service.endSession(old, alice, 'the client left');
  await tick();
  // The old tap is still on the host, on its way out: a new VM may have its tap now.
  assert.is(host.devices.size, 1);
  const next = await makeNics(service);
  assert.ok(next.ok, JSON.stringify(next));
  host.finishRemovals();
  await ending;
  assert.is(host.devices.size, 1);
  assert.is(codeOf(await makeNics(service)), 'QUOTA');
});

test('a request\'s taps are in the ledger as intents before they are created, and completed with their ifindexes after', async () => {
  const { service, host, ledger } = setUp('allow br0 alice\n');
  const seen: LedgerEntry[][] = [];
  const create = host.createTaps.bind(host);
  host.createTaps = (requests, opts) => create(requests, { ...opts, beforeCreate: (taps) => {
    opts.beforeCreate?.(taps);
    seen.push(ledger.read(alice.uid));
  } });
  const session = newSession();
  const [a, b] = tapsOf(await makeNics(service, session, alice, ['br0', 'br0']));
  assert.equal(seen.map((entries) => entries.map((e) => [e.tap, e.ifindex, e.session])), [[[a, undefined, session.id], [b, undefined, session.id]]]);
  const after = ledger.read(alice.uid);
  assert.equal(after.map((e) => [e.tap, e.ifindex, e.uid, e.lifetime]), [[a, host.ifindex(a!), alice.uid, 'session'], [b, host.ifindex(b!), alice.uid, 'session']]);
});

test('intents a dead helper left are found under the lock: the taps they name are counted, then removed, whoever owns them now', async () => {
  const { service, host, ledger, audit } = setUp('allow br0 alice\nmax-taps 1\n');
  // A helper died between creating xkvmcrash1 and recording its ifindex; alice gave it away.
  host.add('xkvmcrash1', bob.uid);
  ledger.write(alice.uid, [{ tap: 'xkvmcrash1', bridge: 'br0', type: 'brctl', uid: alice.uid, lifetime: 'persistent', helper: DEAD, time: 'then' }]);
  assert.is(codeOf(await makeNics(service)), 'QUOTA', 'the orphan counts while it exists');
  await waitUntil(() => audit.records.some((r) => r.event === 'orphans-removed'));
  assert.not.ok(host.devices.has('xkvmcrash1'));
  assert.is(audit.records.find((r) => r.event === 'orphans-removed')?.['result'], 'ok');
  assert.is(codeOf(await makeNics(service)), true);
});

test('an intent is not taken for a tap another uid\'s completed entry claims, nor for a device that is not a tap', async () => {
  const { service, host, ledger } = setUp('allow br0 alice bob\nmax-taps 1\n');
  const [bobs] = tapsOf(await makeNics(service, newSession(), bob, ['br0'], 'persistent'));
  host.add('xkvmnottap', undefined, false);
  ledger.write(alice.uid, [
    { tap: bobs!, bridge: 'br0', type: 'brctl', uid: alice.uid, lifetime: 'persistent', helper: DEAD, time: 'then' },
    { tap: 'xkvmnottap', bridge: 'br0', type: 'brctl', uid: alice.uid, lifetime: 'persistent', helper: DEAD, time: 'then' },
  ]);
  assert.is(codeOf(await makeNics(service, newSession(), alice, ['br0'], 'persistent')), true);
  assert.ok(host.devices.has(bobs!) && host.devices.has('xkvmnottap'));
  assert.equal(ledger.read(alice.uid).map((e) => e.orphan ?? false), [false]);
});

test('a batch that throws between creating and recording leaves nothing unaccounted: its taps are removed as orphans', async () => {
  const { service, host, ledger, audit } = setUp('allow br0 alice\n');
  host.crashAfterCreating('the stand-in broke after creating');
  const reply = await makeNics(service, newSession(), alice, ['br0', 'br0']);
  assert.is(codeOf(reply), 'INTERNAL');
  await waitUntil(() => audit.records.some((r) => r.event === 'orphans-removed'));
  assert.equal(host.owned(alice.uid), []);
  assert.is(audit.records.find((r) => r.event === 'orphans-removed')?.['result'], 'ok');
  assert.equal(ledger.read(alice.uid).filter((e) => e.ifindex === undefined), [], 'no intent is left');
});

test('a user whose lock another helper holds waits for it without holding up anyone else, and gets the taps once it is free', async () => {
  const { service, ledger, locks } = setUp('allow br0 alice bob\n');
  const release = locks.hold(ledger.lockFile(alice.uid));
  const mine = makeNics(service);
  const bobs = await makeNics(service, newSession(), bob);
  assert.is(codeOf(bobs), true, 'bob is served while alice\'s lock is held');
  let settled = false;
  void mine.then(() => { settled = true; });
  await tick();
  assert.not.ok(settled, 'alice waits');
  release();
  assert.is(codeOf(await mine), true);
});

test('past its wait a request whose user\'s lock stays held fails alone, with SYSTEM_ERROR naming the lock', async () => {
  const { service, ledger, locks } = setUp('allow br0 alice bob\n', { lockWaitMs: 50 });
  locks.hold(ledger.lockFile(alice.uid));
  const [mine, bobs] = await Promise.all([makeNics(service), makeNics(service, newSession(), bob)]);
  assert.is(codeOf(bobs), true);
  assert.is(codeOf(mine), 'SYSTEM_ERROR');
  assert.ok(!mine.ok && mine.error.message.includes(ledger.lockFile(alice.uid)), JSON.stringify(mine));
});

test('a request whose user\'s lock stays held backs off: over a 1 s wait it tries the lock a few times, not every 10 ms', async () => {
  const { service, ledger, locks } = setUp('allow br0 alice\n', { lockWaitMs: 1000 });
  const path = ledger.lockFile(alice.uid);
  locks.hold(path);
  const reply = await makeNics(service);
  const tries = (locks.tries.get(path) ?? 0) - 1;
  assert.is(codeOf(reply), 'SYSTEM_ERROR');
  // 10, 20, 40 ... 500 ms: about 8 tries in a second; every 10 ms would be about 100.
  assert.ok(tries >= 3 && tries <= 16, `${tries} tries of the held lock`);
});

test('max-taps holds across two helpers on one ledger: the second counts the first one\'s taps', async () => {
  const bench = setUp('allow br0 alice\nmax-taps 2\n');
  const other = bench.other();
  assert.is(codeOf(await makeNics(bench.service)), true);
  assert.is(codeOf(await makeNics(other)), true);
  assert.is(codeOf(await makeNics(other)), 'QUOTA');
  assert.is(codeOf(await makeNics(bench.service)), 'QUOTA');
});

test('requests that arrive while a batch is being made go together into the next one', async () => {
  const { service, host } = setUp('allow br0 alice bob\nmax-taps 16\n');
  const release = host.holdNextBatch();
  const first = makeNics(service, newSession(), bob);
  await tick();
  const rest = Array.from({ length: 5 }, () => makeNics(service));
  release();
  const replies = await Promise.all([first, ...rest]);
  assert.ok(replies.every((r) => r.ok), JSON.stringify(replies));
  assert.equal(host.batches, [1, 5]);
});

test('more requests than one batch takes are made in several, in the order they came', async () => {
  const { service, host } = setUp('allow br0 alice bob\nmax-taps 64\n');
  const release = host.holdNextBatch();
  const first = makeNics(service, newSession(), bob);
  await tick();
  const rest = Array.from({ length: MAX_BATCH + 8 }, () => makeNics(service));
  release();
  const replies = await Promise.all([first, ...rest]);
  assert.ok(replies.every((r) => r.ok), JSON.stringify(replies.find((r) => !r.ok)));
  assert.equal(host.batches, [1, MAX_BATCH, 8]);
});

test('in one batch a user\'s requests count against max-taps in the order they came, and only the one over is refused', async () => {
  const { service, host, audit } = setUp('allow br0 alice bob\nmax-taps 2\n');
  const release = host.holdNextBatch();
  const first = makeNics(service, newSession(), bob);
  await tick();
  const mine = [makeNics(service), makeNics(service), makeNics(service), makeNics(service, newSession(), bob)];
  release();
  const replies = await Promise.all([first, ...mine]);
  assert.equal(replies.map(codeOf), [true, true, true, 'QUOTA', true]);
  assert.is(audit.records.filter((r) => r['result'] === 'error' && r['code'] === 'QUOTA').length, 1);
});

test('a request that fails in a batch fails alone; the others get their taps, and its intents leave the ledger', async () => {
  const { service, host, ledger } = setUp('allow br0 alice bob\nallow br1 alice bob\nmax-taps 16\n');
  host.broken.add('br1');
  const release = host.holdNextBatch();
  const first = makeNics(service, newSession(), bob);
  await tick();
  const rest = [makeNics(service), makeNics(service, newSession(), alice, ['br0', 'br1']), makeNics(service, newSession(), bob)];
  release();
  const replies = await Promise.all([first, ...rest]);
  assert.equal(replies.map(codeOf), [true, true, 'SYSTEM_ERROR', true]);
  assert.is(ledger.read(alice.uid).length, 1);
  assert.ok(ledger.read(alice.uid).every((e) => e.ifindex !== undefined));
});

test('ovs-cleanup from a caller whom no allow line names is DENIED before anything runs; a line naming them by group or * gives standing', async () => {
  const { service, host, audit } = setUp('allow br0 alice\nallow ovsbr0 @kvm\ndeny * bob\n');
  const cleanup = (who: Caller): Promise<Reply> => service.handle({ v: 1, id: 7, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap: 'xkvmsomeone' }] }, who, newSession());
  const refused = await cleanup(nobody);
  assert.is(codeOf(refused), 'DENIED');
  assert.ok(!refused.ok && /no allow line/.test(refused.error.message), JSON.stringify(refused));
  assert.is(codeOf(await cleanup(bob)), 'DENIED');
  assert.equal(host.events, [], 'nothing ran');
  assert.is(audit.records.filter((r) => r['op'] === 'ovs-cleanup' && r['decision'] === 'deny').length, 2);
  const member: Caller = { ...bob, uid: 4200, user: { ...bob.user, name: 'carol', uid: 4200, groups: ['kvm'] } };
  assert.is(codeOf(await cleanup(member)), true);
  assert.is(codeOf(await cleanup(alice)), true);
  const { service: open } = setUp('allow * *\n');
  assert.is(codeOf(await open.handle({ v: 1, id: 8, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap: 'xkvmsomeone' }] }, nobody, newSession())), true);
});

test('one user\'s clean-ups run one at a time; another user\'s run alongside', async () => {
  const { service, host } = setUp('allow * alice bob\n');
  let open = (): void => undefined;
  host.cleanupGate = new Promise<void>((resolve) => { open = resolve; });
  const cleanup = (who: Caller): Promise<Reply> => service.handle({ v: 1, id: 9, op: 'ovs-cleanup', ports: [{ bridge: 'ovsbr0', tap: 'xkvmx' }] }, who, newSession());
  const all = [cleanup(alice), cleanup(alice), cleanup(alice), cleanup(bob)];
  await waitUntil(() => host.events.length >= 2);
  await tick();
  assert.equal(host.events, [`cleanup ${alice.uid}`, `cleanup ${bob.uid}`]);
  open();
  const replies = await Promise.all(all);
  assert.ok(replies.every((r) => r.ok));
  // alice's: each started after the one before it was done.
  const mine = host.events.filter((e) => e.startsWith(`cleanup ${alice.uid}`));
  assert.equal(mine, [`cleanup ${alice.uid}`, `cleanup ${alice.uid} done`, `cleanup ${alice.uid}`, `cleanup ${alice.uid} done`, `cleanup ${alice.uid}`, `cleanup ${alice.uid} done`]);
});

test('the ledger file is the one the store\'s state directory holds, and a bad entry is reported and skipped', async () => {
  const state = mkdtempSync(join(dir, 'bad-'));
  const bad: string[] = [];
  const ledger = new Ledger(state, { lock: new MemoryLocks().lock, onBad: (file, why) => bad.push(`${file}: ${why}`) });
  const good = { tap: 'xkvmgood', bridge: 'br0', type: 'brctl', ifindex: 7, uid: 4101, lifetime: 'persistent', helper: HELPER, time: 't' };
  writeFileSync(join(state, 'ledger', '4101.json'), JSON.stringify({ version: 1, uid: 4101, entries: [good, { ...good, tap: '-bad' }, { ...good, uid: 4102 }, { ...good, helper: { pid: -1, start: '1' } }] }));
  assert.equal(ledger.read(4101).map((e) => e.tap), ['xkvmgood']);
  assert.is(bad.length, 3);
  writeFileSync(join(state, 'ledger', '4102.json'), '{not json');
  assert.equal(ledger.read(4102), []);
  assert.is(bad.length, 4);
  assert.equal(ledger.uids(), [4101, 4102]);
  assert.match(readFileSync(join(state, 'ledger', '4101.json'), 'utf8'), /xkvmgood/);
});

async function waitUntil(condition: () => boolean, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A make-nics with per-NIC options, as parseRequest gives it. */
function ask(service: Service, nics: NicRequest[], extra: Partial<MakeNicsRequest> = {}, who: Caller = alice): Promise<Reply> {
  return service.handle({ v: 1, id: 3, op: 'make-nics', nics, lifetime: 'session', ...extra }, who, newSession());
}

function messageOf(reply: Reply): string {
  return reply.ok ? '' : reply.error.message;
}

test('handoff "fd" on a connection that cannot carry fds is BAD_REQUEST saying why, before anything runs; handoff "name" is the default behaviour', async () => {
  const { service, host, audit } = setUp('allow br0 alice\n');
  const why = 'fd handoff needs a Unix socket as stdin/stdout; xkvm passes one end of a socketpair';
  const refused = await service.handle({ v: 1, id: 3, op: 'make-nics', nics: [{ bridge: 'br0' }], handoff: 'fd' }, alice, { ...newSession(), fdRefusal: why });
  assert.is(codeOf(refused), 'BAD_REQUEST');
  assert.is(messageOf(refused), why);
  assert.equal(host.events, [], 'nothing ran');
  assert.is(audit.records.filter((r) => r['code'] === 'BAD_REQUEST').length, 1, 'the refusal is audited');
  assert.is(tapsOf(await ask(service, [{ bridge: 'br0' }], { handoff: 'name' })).length, 1);
});

test('handoff "fd": the reply\'s fds (one a queue, nic by nic) are given once to whoever sends it; the taps are in the ledger as "fd", count for max-taps, belong to no session, and are watched', async () => {
  const watched: string[] = [];
  const { service, ledger, audit } = setUp('allow br0 alice\nmax-taps 3 alice\n', {
    linkWatch: () => {
      watched.push('started');
      return { stop: () => watched.push('stopped') };
    },
  });
  const session = newSession();
  const reply = await service.handle({ v: 1, id: 3, op: 'make-nics', nics: [{ bridge: 'br0', queues: 2 }, { bridge: 'br0' }], handoff: 'fd' }, alice, session);
  const fds = service.takeFds(reply);
  assert.ok(fds !== undefined, JSON.stringify(reply));
  assert.is(fds.length, 3, 'two queues, then one');
  assert.is(service.takeFds(reply), undefined, 'given once');
  closeFds(fds);
  assert.equal(session.nics, [], 'not the session\'s: the connection\'s end does not remove them');
  assert.equal(ledger.read(alice.uid).map((e) => e.lifetime), ['fd', 'fd']);
  assert.is(audit.records.find((r) => r['result'] === 'ok' && r['op'] === 'make-nics')?.['lifetime'], 'fd');
  assert.is(service.fdTaps.watched, 2);
  assert.equal(watched, ['started']);
  assert.is(codeOf(await ask(service, [{ bridge: 'br0' }, { bridge: 'br0' }], { handoff: 'fd' })), 'QUOTA', 'the two count');
  const named = await ask(service, [{ bridge: 'br0' }], { handoff: 'name' });
  assert.is(service.takeFds(named), undefined, 'a named tap has no fds');
});

test('nics without options make the same taps as bridges, in order', async () => {
  const { service } = setUp('allow br0 alice\nallow br1 alice\n');
  const reply = await ask(service, [{ bridge: 'br1' }, { bridge: 'br0' }, { bridge: 'br1', queues: 1, mac: '52:54:00:00:00:01' }]);
  assert.ok(reply.ok && 'nics' in reply, JSON.stringify(reply));
  if (reply.ok && 'nics' in reply) assert.equal(reply.nics.map((n) => n.bridge), ['br1', 'br0', 'br1']);
});

test('more queues than the user\'s max-queues is QUOTA naming the limit and its line, before anything is made', async () => {
  const { service, host } = setUp('allow br0 alice bob\nmax-queues 2 alice\n');
  const refused = await ask(service, [{ bridge: 'br0' }, { bridge: 'br0', queues: 3 }]);
  assert.is(codeOf(refused), 'QUOTA');
  assert.match(messageOf(refused), /at most 2 queues a tap \(max-queues, .*:2\); nics\[1\] on br0 asks for 3/);
  const builtIn = await ask(service, [{ bridge: 'br0', queues: 9 }], {}, bob);
  assert.is(codeOf(builtIn), 'QUOTA');
  assert.match(messageOf(builtIn), /at most 8 queues a tap \(max-queues, the built-in default\)/);
  assert.equal(host.events, [], 'nothing ran');
});

test('on a mac-locked bridge a nic without "mac" is BAD_REQUEST naming mac-lock and its line; other users and bridges are not locked', async () => {
  const { service, host } = setUp('allow br0 alice bob\nallow br1 alice bob\nmac-lock br0 alice\n');
  const refused = await ask(service, [{ bridge: 'br1' }, { bridge: 'br0' }]);
  assert.is(codeOf(refused), 'BAD_REQUEST');
  assert.match(messageOf(refused), /^taps of alice are under mac-lock on br0 \(.*:3\), so nics\[1\] must carry the guest's "mac"$/);
  assert.equal(host.events, [], 'nothing ran');
  assert.is(tapsOf(await ask(service, [{ bridge: 'br1' }])).length, 1, 'br1 is not locked');
  assert.is(tapsOf(await ask(service, [{ bridge: 'br0' }], {}, bob)).length, 1, 'bob is not locked');
});

test('the policy\'s vlan reaches the network layer tap by tap (none where no line applies), and the reply says each tap\'s vlan', async () => {
  const { service, host } = setUp('allow br0 alice bob\nallow br1 alice\nvlan br0 10 alice\nvlan br0 30 bob\n');
  const asked: Array<readonly (number | undefined)[] | undefined> = [];
  const create = host.createTaps.bind(host);
  host.createTaps = (requests, opts) => {
    asked.push(...requests.map((r) => r.vlans));
    return create(requests, opts);
  };
  const reply = await ask(service, [{ bridge: 'br0' }, { bridge: 'br1' }]);
  if (!reply.ok || !('nics' in reply)) throw new Error(`expected taps, got ${JSON.stringify(reply)}`);
  assert.equal(reply.nics.map((n) => n.vlan), [10, undefined]);
  await ask(service, [{ bridge: 'br0' }], {}, bob);
  assert.equal(asked, [[10, undefined], [30]]);
});

test('under mac-lock a universally administered MAC (a real NIC\'s, which a lock would take over) is refused BAD_REQUEST naming the rule, before anything is made; off mac-lock it is a plain tap', async () => {
  const { service, host } = setUp('allow br0 alice\nallow br1 alice\nmac-lock br1 alice\n');
  const real = await ask(service, [{ bridge: 'br1', mac: '00:16:3e:12:34:56' }]);
  assert.is(codeOf(real), 'BAD_REQUEST');
  assert.match(messageOf(real), /nics\[0\]\.mac 00:16:3e:12:34:56 is a universally administered address .* under mac-lock on br1 \(.*:3\) a guest's MAC must be locally administered/);
  assert.equal(host.events, [], 'nothing ran');
  const plain = await ask(service, [{ bridge: 'br0', mac: '00:16:3e:12:34:56' }]);
  assert.ok(plain.ok, JSON.stringify(plain));
  const guest = await ask(service, [{ bridge: 'br1', mac: '52:54:00:12:34:56' }]);
  assert.ok(guest.ok, JSON.stringify(guest));
});

test('a nic under mac-lock reaches the network layer with its MAC and the reply says mac; a nic with a MAC on a bridge without mac-lock is not locked', async () => {
  const { service, host } = setUp('allow br0 alice\nallow br1 alice\nmac-lock br1 alice\n');
  const asked: Array<readonly (string | undefined)[] | undefined> = [];
  const create = host.createTaps.bind(host);
  host.createTaps = (requests, opts) => {
    asked.push(...requests.map((r) => r.macs));
    return create(requests, opts);
  };
  const reply = await ask(service, [{ bridge: 'br0', mac: '52:54:00:12:34:55' }, { bridge: 'br1', mac: '52:54:00:12:34:56' }]);
  assert.equal(asked, [[undefined, '52:54:00:12:34:56']]);
  if (!reply.ok || !('nics' in reply)) throw new Error(`expected taps, got ${JSON.stringify(reply)}`);
  assert.equal(reply.nics.map((n) => n.mac), [undefined, '52:54:00:12:34:56']);
  const plain = await ask(service, [{ bridge: 'br0', mac: '52:54:00:12:34:57' }]);
  assert.is(tapsOf(plain).length, 1);
  assert.equal(asked, [[undefined, '52:54:00:12:34:56'], undefined], 'no macs at all for a request without a lock');
});

test('queues within max-queues reach the network layer tap by tap, and the reply says queues for a multi-queue tap only', async () => {
  const { service, host } = setUp('allow br0 alice\nallow br1 alice\nmax-queues 4\n');
  const asked: Array<readonly number[] | undefined> = [];
  const create = host.createTaps.bind(host);
  host.createTaps = (requests, opts) => {
    asked.push(...requests.map((r) => r.queues));
    return create(requests, opts);
  };
  const reply = await ask(service, [{ bridge: 'br0', queues: 4 }, { bridge: 'br1' }, { bridge: 'br0', queues: 1 }]);
  assert.equal(asked, [[4, 1, 1]]);
  if (!reply.ok || !('nics' in reply)) throw new Error(`expected taps, got ${JSON.stringify(reply)}`);
  assert.equal(reply.nics.map((n) => n.queues), [4, undefined, undefined]);
});

test('two of the user\'s groups giving different VLANs on the bridge is DENIED naming both lines', async () => {
  const { service, host } = setUp('allow br0 *\nvlan br0 10 @alice\nvlan br0 11 @kvm\n');
  const member: Caller = { ...alice, user: { ...alice.user, groups: ['alice', 'kvm'] } };
  const refused = await ask(service, [{ bridge: 'br0' }], {}, member);
  assert.is(codeOf(refused), 'DENIED');
  assert.match(messageOf(refused), /two VLANs on br0: 10 by .*:2: vlan br0 10 @alice and 11 by .*:3: vlan br0 11 @kvm/);
  assert.equal(host.events, []);
});

test.run();
