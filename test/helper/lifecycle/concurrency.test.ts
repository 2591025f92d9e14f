/**
 * Invariant 5: concurrent requests from the socket helper and stdio helpers at once never collide
 * on names, and every tap goes to the right owner; sessions from both kinds of helper sharing
 * one state folder all end cleanly.
 */
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { Nic, Reply } from '../../../shared/src/protocol/messages.js';
import { createNetns, type Netns, type TestUser } from '../../support/netns.js';
import {
  makeScratch, startHolder, startSocketHelper, startStdioHelper, stop, type Holder, type StdioHelper, type Watched,
} from '../../support/helper-proc.js';
import { helperTaps } from '../../support/taps.js';
import { waitFor, within } from '../../support/wait.js';
import { removeUsers, setUp } from './support.js';

const CONNECTIONS_PER_USER = 4;
const BRIDGES = ['br0', 'br1'];
const STDIO_HELPERS = 2;
const STDIO_REQUESTS = 3;

let ns: Netns;
let users: TestUser[];

test.before(() => {
  users = setUp(3);
  ns = createNetns({ bridges: BRIDGES });
});

test.after(() => {
  ns?.destroy();
  removeUsers(users);
});

test('3 users x 4 connections on the socket helper and 2 root stdio helpers, all at once, get distinct taps owned by the right uid, all removed when the connections close', async () => {
  const scratch = makeScratch('cc');
  let socketHelper: Watched | undefined;
  const holders: Holder[] = [];
  const stdio: StdioHelper[] = [];
  try {
    const names = users.map((u) => u.name).join(' ');
    const config = scratch.policy([...BRIDGES.map((b) => `allow ${b} ${names} root`)]);
    socketHelper = await startSocketHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket });
    for (const u of users) {
      holders.push(startHolder(ns, u.name, { socket: scratch.socket, bridges: BRIDGES, connections: CONNECTIONS_PER_USER, waitGo: true }));
    }
    await Promise.all(holders.map((h) => h.ready(15_000)));
    for (let i = 0; i < STDIO_HELPERS; i += 1) stdio.push(startStdioHelper(ns, { config, stateDir: scratch.state }));

    // Everyone at once: the users' 12 requests and the stdio helpers' 6.
    for (const h of holders) h.go();
    const stdioReplies = stdio.map(async (s) => {
      const replies: Reply[] = [];
      for (let r = 0; r < STDIO_REQUESTS; r += 1) {
        replies.push(await s.connection.request({ v: 1, op: 'make-nics', bridges: BRIDGES, lifetime: 'session' }));
      }
      return replies;
    });
    const userResults = await Promise.all(holders.map((h) => h.result(30_000)));
    const rootReplies = (await within(Promise.all(stdioReplies), 30_000, 'the stdio helpers to reply')).flat();

    const owned: Array<{ owner: string; nic: Nic }> = [];
    userResults.forEach((r, i) => {
      assert.is(r.results.length, CONNECTIONS_PER_USER);
      for (const one of r.results) {
        assert.ok(one.ok, JSON.stringify(one));
        if (one.ok) for (const nic of one.nics) owned.push({ owner: users[i]!.name, nic: nic as Nic });
      }
    });
    for (const reply of rootReplies) {
      assert.ok(reply.ok && 'nics' in reply, JSON.stringify(reply));
      if (reply.ok && 'nics' in reply) for (const nic of reply.nics) owned.push({ owner: 'root', nic });
    }
    const expected = users.length * CONNECTIONS_PER_USER * BRIDGES.length + STDIO_HELPERS * STDIO_REQUESTS * BRIDGES.length;
    assert.is(owned.length, expected);
    assert.is(new Set(owned.map((o) => o.nic.tap)).size, expected, 'every tap name is distinct');

    const devices = new Map(helperTaps(ns).map((d) => [d.name, d]));
    assert.is(devices.size, expected, 'no tap besides the ones handed out');
    for (const { owner, nic } of owned) {
      const dev = devices.get(nic.tap);
      assert.ok(dev !== undefined, `${nic.tap} exists`);
      assert.is(dev.owner, owner, `${nic.tap} is owned by ${owner}`);
      assert.is(dev.master, nic.bridge, `${nic.tap} is on ${nic.bridge}`);
      assert.is(dev.up, true);
    }
    assert.is(scratch.records().length, users.length * CONNECTIONS_PER_USER + STDIO_HELPERS, 'one record a session');

    const closed = Date.now();
    for (const h of holders) h.release();
    for (const s of stdio) s.connection.close();
    await waitFor(() => helperTaps(ns).length === 0 && scratch.records().length === 0, 2000,
      { since: closed, what: 'every tap and record to be gone', describe: () => `${helperTaps(ns).length} taps, ${scratch.records().length} records left` });
    for (const s of stdio) {
      const exit = await within(s.exited, 5000, 'the stdio helper to exit');
      assert.is(exit.code, 0, s.stderr());
    }
    for (const h of holders) await within(h.exited, 5000, 'the client to exit');
  } finally {
    for (const h of [...holders, ...stdio]) await stop(h);
    if (socketHelper !== undefined) await stop(socketHelper);
    scratch.remove();
  }
});

test('max-taps holds across helper processes: 5 stdio helpers asking at once for one tap each, with max-taps 2, hand out at most 2', async () => {
  const scratch = makeScratch('cq');
  const stdio: StdioHelper[] = [];
  try {
    const config = scratch.policy(['allow br0 root', 'max-taps 2 root']);
    for (let i = 0; i < 5; i += 1) stdio.push(startStdioHelper(ns, { config, stateDir: scratch.state }));
    // Warm every helper up (started, policy read, caller identified) with a refused request...
    const warm = await within(Promise.all(stdio.map((s) => s.connection.request({ v: 1, op: 'make-nics', bridges: ['br9'] }))), 30_000, 'warm-up replies');
    for (const w of warm) assert.is(!w.ok && w.error.code, 'DENIED');
    // ...then all ask at the same moment.
    const replies = await within(Promise.all(stdio.map((s) => s.connection.request({ v: 1, op: 'make-nics', bridges: ['br0'], lifetime: 'session' }))), 30_000, 'replies');
    const granted = replies.filter((r) => r.ok).length;
    const held = helperTaps(ns).filter((d) => d.owner === 'root').length;
    console.log(`quota race: ${granted} of 5 granted with max-taps 2 (root holds ${held} taps); refusals: ${replies.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.error.code)).join(',')}`);
    assert.ok(granted >= 1, 'at least one is served');
    assert.ok(held <= 2, `root holds ${held} taps at once, max-taps is 2`);
    assert.ok(granted <= 2, `${granted} granted, max-taps is 2`);
  } finally {
    for (const s of stdio) s.connection.close();
    await waitFor(() => helperTaps(ns).length === 0, 5000, { what: 'the quota test\'s taps to go' }).catch(() => undefined);
    for (const s of stdio) await stop(s);
    scratch.remove();
  }
});

test.run();
