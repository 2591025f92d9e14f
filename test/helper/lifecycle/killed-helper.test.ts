/**
 * Invariant 4, the helper's side: a helper crash does not take a live session's taps (qemu still
 * uses them); a new helper on the same state folder keeps them and removes them within 2 s of that
 * client's end; and it removes, within 2 s of starting, the taps of clients that died while no
 * helper ran. A client is its pid AND its start time: a live process under the same pid with
 * another start time does not keep a session alive.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createNetns, type Netns, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import {
  makeScratch, startHolder, startSocketHelper, stop, type Holder, type Scratch, type Watched,
} from '../../support/helper-proc.js';
import { isRunning, procStat, signal } from '../../support/procs.js';
import { present } from '../../support/taps.js';
import { waitFor, within } from '../../support/wait.js';
import { removeUsers, setUp } from './support.js';

let ns: Netns;
let ovs: Ovs;
let alice: TestUser;
let bob: TestUser;


test.before(() => {
  [alice, bob] = setUp(2) as [TestUser, TestUser];
  ns = createNetns({ bridges: ['br0'] });
  ovs = startOvs(ns, { bridges: ['ovsbr0'] });
});

test.after(() => {
  ovs?.stop();
  ns?.destroy();
  removeUsers([alice, bob].filter((u) => u !== undefined));
});

/** The mac-lock flows on ovsbr0 (helper/src/net/ovsflows.ts: cookie 0x786b76…). */
const lockFlows = (): string[] => ovs.flows('ovsbr0').filter((l) => l.includes('cookie=0x786b76'));

/** SIGKILL the helper alone (not what it may be running), and make sure it is gone. */
async function crash(helper: Watched): Promise<void> {
  helper.kill('SIGKILL');
  const exit = await within(helper.exited, 5000, 'the helper to die of SIGKILL');
  assert.is(exit.signal, 'SIGKILL');
}

function policy(scratch: Scratch): string {
  return scratch.policy([`allow br0 ${alice.name} ${bob.name}`, `allow ovsbr0 ${alice.name} ${bob.name}`, `mac-lock ovsbr0 ${bob.name}`, `ovsdb ${ovs.db}`]);
}

async function holding(scratch: Scratch, user: TestUser, bridges: string[], macs?: (string | null)[]): Promise<{ holder: Holder; pid: number; taps: string[] }> {
  const holder = startHolder(ns, user.name, { socket: scratch.socket, bridges, ...(macs === undefined ? {} : { macs }) });
  const pid = await holder.ready(15_000);
  const { results } = await holder.result(15_000);
  const first = results[0];
  if (!first?.ok) throw new Error(`make-nics failed: ${JSON.stringify(results)}`);
  return { holder, pid, taps: first.nics.map((n) => n.tap) };
}

test('taps of a live client survive a SIGKILLed helper; the next helper adopts them and removes them within 2 s of that client\'s end', async () => {
  const scratch = makeScratch('kh');
  const helpers: Watched[] = [];
  try {
    const config = policy(scratch);
    const paths = { config, stateDir: scratch.state, socket: scratch.socket };
    const first = await startSocketHelper(ns, paths);
    helpers.push(first);
    const { holder, pid, taps } = await holding(scratch, alice, ['br0', 'ovsbr0']);
    const [record] = scratch.records();
    assert.ok(record !== undefined);

    await crash(first);
    await holder.line((l) => l.includes('"lost"'), 5000, 'the client to notice the helper is gone');
    // Nothing reaps them now: no helper runs. They are still there, and so is the record.
    assert.ok(isRunning(pid));
    assert.equal(present(ns, taps), taps, 'taps survive the helper');
    assert.equal(ovs.ports('ovsbr0'), [taps[1]], 'the OVS port survives the helper');
    assert.equal(scratch.records(), [record]);

    const second = await startSocketHelper(ns, paths);
    helpers.push(second);
    const adopted = await second.audit((a) => a.event === 'session-adopted', 2000, 'session-adopted');
    assert.is(adopted['session'], record.replace(/\.json$/, ''));
    assert.is(adopted['uid'], alice.uid);
    const start = second.audits.find((a) => a.event === 'helper-start');
    assert.is(start?.['adopted'], 1);
    assert.is(start?.['reaped'], 0);
    assert.equal(present(ns, taps), taps, 'the new helper keeps the live client\'s taps');
    assert.equal(ovs.ports('ovsbr0'), [taps[1]]);

    const killed = Date.now();
    signal(pid, 'SIGKILL');
    await waitFor(() => present(ns, taps).length === 0 && ovs.ports('ovsbr0').length === 0 && scratch.records().length === 0,
      2000, { since: killed, what: 'the adopted taps, port and record to be gone', describe: () => `taps ${present(ns, taps).join(',')}; records ${scratch.records().join(',')}` });
    const reaped = await second.audit((a) => a.event === 'session-reaped', 1000, 'session-reaped');
    assert.is(reaped['result'], 'ok');
    await holder.exited;
  } finally {
    for (const h of helpers) await stop(h);
    scratch.remove();
  }
});

test('a session whose client died while no helper ran is reaped within 2 s of a new helper starting, the mac-lock flows of its OVS port too', async () => {
  const scratch = makeScratch('kh');
  const helpers: Watched[] = [];
  try {
    const paths = { config: policy(scratch), stateDir: scratch.state, socket: scratch.socket };
    const first = await startSocketHelper(ns, paths);
    helpers.push(first);
    // bob is under mac-lock on ovsbr0: his port has two flows, which outlive it unless removed.
    const { holder, pid, taps } = await holding(scratch, bob, ['ovsbr0', 'br0'], ['52:54:00:4c:00:01', null]);
    assert.is(lockFlows().length, 2, 'the OVS port\'s mac-lock flows');
    await crash(first);
    signal(pid, 'SIGKILL');
    await holder.exited;
    assert.equal(present(ns, taps), taps, 'no helper, so the dead client\'s taps are still there');
    assert.is(scratch.records().length, 1);

    const started = Date.now();
    const second = await startSocketHelper(ns, paths);
    helpers.push(second);
    await waitFor(() => present(ns, taps).length === 0 && ovs.ports('ovsbr0').length === 0 && scratch.records().length === 0,
      2000, { since: started, what: 'the dead client\'s taps, port and record to be gone' });
    assert.equal(lockFlows(), [], 'the port\'s mac-lock flows are gone with it');
    const reaped = second.audits.find((a) => a.event === 'session-reaped');
    assert.is(reaped?.['result'], 'ok', JSON.stringify(second.audits));
    assert.is(second.audits.find((a) => a.event === 'helper-start')?.['reaped'], 1);
  } finally {
    for (const h of helpers) await stop(h);
    scratch.remove();
  }
});

test('a record naming a live pid with another start time (a reused pid) does not keep its taps: the next helper reaps them', async () => {
  const scratch = makeScratch('kh');
  const helpers: Watched[] = [];
  try {
    const paths = { config: policy(scratch), stateDir: scratch.state, socket: scratch.socket };
    // A tap as the helper would have made it for alice (in its ledger too), and a record that says
    // its client is this very (live) test process, but started at another time; its helper is long
    // gone (pid 1 with a wrong start time).
    const tap = `xkvmreuse${randomBytes(2).toString('hex')}`;
    ns.ip('tuntap', 'add', 'dev', tap, 'mode', 'tap', 'user', String(alice.uid));
    ns.ip('link', 'set', 'dev', tap, 'master', 'br0', 'up');
    const self = procStat(process.pid);
    assert.ok(self !== undefined);
    const id = randomBytes(8).toString('hex');
    mkdirSync(scratch.state, { mode: 0o700 });
    writeFileSync(join(scratch.state, `${id}.json`), JSON.stringify({
      version: 1, id, uid: alice.uid,
      client: { pid: process.pid, start: String(self.start + 1n) },
      helper: { pid: 1, start: '0' },
      nics: [{ bridge: 'br0', tap, type: 'brctl' }],
    }), { mode: 0o600 });
    // Control: the same record with the right start time would be kept (adopted).
    const liveId = randomBytes(8).toString('hex');
    const liveTap = `xkvmlive${randomBytes(2).toString('hex')}`;
    ns.ip('tuntap', 'add', 'dev', liveTap, 'mode', 'tap', 'user', String(alice.uid));
    writeFileSync(join(scratch.state, `${liveId}.json`), JSON.stringify({
      version: 1, id: liveId, uid: alice.uid,
      client: { pid: process.pid, start: String(self.start) },
      helper: { pid: 1, start: '0' },
      nics: [{ bridge: 'br0', tap: liveTap, type: 'brctl' }],
    }), { mode: 0o600 });
    const ifindex = (name: string): number => (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', name)) as { ifindex: number }[])[0]!.ifindex;
    const entry = (t: string, session: string): object => ({
      tap: t, bridge: 'br0', type: 'brctl', ifindex: ifindex(t), uid: alice.uid, lifetime: 'session', session, helper: { pid: 1, start: '0' }, time: 'then',
    });
    mkdirSync(join(scratch.state, 'ledger'), { mode: 0o700 });
    writeFileSync(join(scratch.state, 'ledger', `${alice.uid}.json`),
      JSON.stringify({ version: 1, uid: alice.uid, entries: [entry(tap, id), entry(liveTap, liveId)] }), { mode: 0o600 });

    const started = Date.now();
    const helper = await startSocketHelper(ns, paths);
    helpers.push(helper);
    await waitFor(() => present(ns, [tap]).length === 0 && !scratch.records().includes(`${id}.json`), 2000,
      { since: started, what: `tap ${tap} of the impostor's session to be gone` });
    const reaped = helper.audits.find((a) => a.event === 'session-reaped');
    assert.is(reaped?.['session'], id);
    assert.equal(present(ns, [liveTap]), [liveTap], 'the session whose client really lives is kept');
    assert.equal(scratch.records(), [`${liveId}.json`]);
    assert.is(helper.audits.find((a) => a.event === 'session-adopted')?.['session'], liveId);
  } finally {
    for (const h of helpers) await stop(h);
    scratch.remove();
  }
});

test.run();
