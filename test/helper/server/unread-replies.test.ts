// Issue 9, attack 4: replies the client never reads. An ordinary user opens 4 connections to the
// real helper and writes 50 000 refused requests on each without ever reading a reply. What must
// hold: the helper's memory stays bounded (its peak RSS, VmHWM, grows by less than 32 MiB; with
// every reply kept, 200 000 of them, it grows far more), and another user is served meanwhile.
// The helper is started with --max-refusals 0, so that closing a connection after 8 refusals in
// a row (attack 3's defence) does not hide this one: what is measured here is the bound on unsent
// replies alone. Measured after a fixed number of requests, not in time.
import { readFileSync } from 'node:fs';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createTestUser, removeTestUser, type TestUser } from '../../support/netns.js';
import { stop } from '../../support/helper-proc.js';
import {
  Agent, assertNics, closeBench, fail, makeNicsRequest, openBench, startUnreadClient, type Bench, type Hostile, type HostileEvent,
} from './support.js';
import { frameOf } from './wire.js';

const CONNECTIONS = 4;
const REQUESTS = 50_000;
const BOUND_KIB = 32 * 1024;

let bench: Bench | undefined;
let users: [TestUser, TestUser] | undefined;
const b = (): Bench => bench ?? fail('no bench');
const u = (): [TestUser, TestUser] => users ?? fail('no users');

test.before(async () => {
  users = [createTestUser('unr'), createTestUser('vic')];
  bench = await openBench({ policy: `allow br0 root ${users[1].name}\n`, args: ['--max-refusals', '0', '--idle-connection-seconds', '2'] });
});

test.after(async () => {
  await closeBench(bench);
  for (const user of users ?? []) removeTestUser(user);
});

/** A field of /proc/PID/status in KiB. */
function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no ${field} for pid ${pid}`);
  return Number(match[1]);
}

const settled = (e: readonly HostileEvent[], i: number): boolean => e.some((x) => (x.event === 'written' || x.event === 'closed') && x.i === i);

test(`${CONNECTIONS} connections writing ${REQUESTS} requests each and reading no reply leave the helper's memory bounded, and another user is served`, async () => {
  const { helper, ns } = b();
  const [attacker, victim] = u();
  const before = statusKiB(helper.pid, 'VmHWM');
  let hostile: Hostile | undefined;
  let agent: Agent | undefined;
  try {
    hostile = startUnreadClient(ns, attacker, {
      socket: helper.socket, connections: CONNECTIONS, requests: REQUESTS, startMs: 200,
      frame: frameOf({ v: 1, id: 9, op: 'make-nics', bridges: ['br0'] }).toString('hex'),
    });
    await hostile.until('the connections to be open', (e) => e.some((x) => x.event === 'opened'));
    // while the attacker writes, another user is served
    agent = Agent.start(ns, victim);
    await agent.open('v', helper.socket);
    const id = b().id();
    assertNics(await agent.ask('v', makeNicsRequest(id)), id, ['br0'], ns, 'the other user during the flood');
    await agent.close('v');
    // each connection has either written everything (the helper read it all) or been closed
    const events = await hostile.until('every connection to be written or closed',
      (e) => Array.from({ length: CONNECTIONS }, (_, i) => i).every((i) => settled(e, i)), 120_000);
    const after = statusKiB(helper.pid, 'VmHWM');
    if (process.env['XKVM_UNREAD_STATS'] !== undefined) {
      process.stdout.write(`unread: VmHWM ${before} -> ${after} KiB; ${events.filter((x) => x.event === 'written').length} written, ${events.filter((x) => x.event === 'closed').length} closed\n`);
    }
    assert.ok(after - before < BOUND_KIB, `the helper's peak RSS grew by ${after - before} KiB (from ${before} KiB)`);
    assert.ok(helper.alive());
  } finally {
    hostile?.release();
    if (hostile !== undefined) await stop(hostile);
    await agent?.stop();
  }
});

test.run();
