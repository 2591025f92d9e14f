/**
 * Issue 12, item 3: `xkvm-helper audit [--user U] [--bridge B] [--since DURATION] [--json]` reads
 * the records a real helper appended to its audit-log while two real users asked for taps (one
 * refused), and prints those that match, oldest first. Run as the CLI itself, as root.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createNetns, createTestUser, removeTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { HELPER_MAIN, makeScratch, startHolder, stop, watch, type Scratch } from '../../support/helper-proc.js';
import { waitFor } from '../../support/wait.js';

let ns: Netns;
let alice: TestUser;
let bob: TestUser;
let scratch: Scratch;
let config = '';
let log = '';

/** `xkvm-helper audit ARGS` as root; its status, stdout lines and stderr. */
function audit(...args: string[]): { status: number | null; lines: string[]; stderr: string } {
  const r = spawnSync(process.execPath, [HELPER_MAIN, 'audit', '--config', config, ...args], { encoding: 'utf8' });
  return { status: r.status, lines: r.stdout.split('\n').filter((l) => l !== ''), stderr: r.stderr };
}

type Rec = { event: string; time: string; op?: string; result?: string; code?: string; caller?: { uid: number; user: string }; uid?: number; request?: { bridges?: string[] } };

function json(...args: string[]): Rec[] {
  const r = audit('--json', ...args);
  assert.is(r.status, 0, r.stderr);
  return r.lines.map((l) => JSON.parse(l) as Rec);
}

test.before(async () => {
  if (process.geteuid?.() !== 0) throw new Error('this suite must run as root: it starts the helper and runs ordinary users');
  sweepStaleNetns();
  alice = createTestUser('aa');
  bob = createTestUser('ab');
  ns = createNetns({ bridges: ['br0', 'br1'] });
  scratch = makeScratch('aq');
  const logs = join(scratch.dir, 'logs');
  mkdirSync(logs);
  chmodSync(logs, 0o750);
  log = join(logs, 'audit.log');
  // A record from two days ago (an older helper's), and a line that is not a record.
  const old = new Date(Date.now() - 2 * 86_400_000).toISOString();
  appendFileSync(log, `${JSON.stringify({ time: old, helper: 1, event: 'request', op: 'make-nics', caller: { uid: alice.uid, user: alice.name }, request: { bridges: ['br0'] }, decision: 'allow', result: 'ok', taps: [{ bridge: 'br0', tap: 'xkvmold00000', type: 'brctl' }] })}\n{"time": "cut short\n`, { mode: 0o640 });
  config = scratch.policy([`allow br0 ${alice.name} ${bob.name}`, `allow br1 ${alice.name}`, `audit-log ${log}`]);
  const socket = join(scratch.dir, 'h.sock');
  const helper = watch(ns.spawn([process.execPath, HELPER_MAIN, '--config', config, '--state-dir', scratch.state, '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] }));
  try {
    await waitFor(() => helper.exit() !== undefined || helper.audits.some((a) => a.event === 'helper-start'), 15_000, { what: 'the helper to serve', describe: () => helper.stderr() });
    for (const [user, bridges] of [[alice, ['br0', 'br1']], [bob, ['br1']], [bob, ['br0']]] as const) {
      const holder = startHolder(ns, user.name, { socket, bridges });
      await holder.result(15_000);
      await stop(holder);
    }
    await waitFor(() => helper.audits.filter((a) => a.event === 'session-end').length === 2, 15_000, { what: 'both sessions to end', describe: () => helper.stderr() });
  } finally {
    await stop(helper);
  }
});

test.after(() => {
  scratch?.remove();
  ns?.destroy();
  for (const u of [alice, bob]) if (u !== undefined) removeTestUser(u);
});

test('--json prints every record of the file, oldest first, one a line, and says on stderr how many lines were not records', () => {
  const r = audit('--json');
  assert.is(r.status, 0, r.stderr);
  const all = r.lines.map((l) => JSON.parse(l) as Rec);
  const fileRecords = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{"time":"2'));
  assert.is(all.length, fileRecords.length);
  const times = all.map((x) => x.time);
  assert.equal(times, [...times].sort(), 'oldest first');
  assert.match(r.stderr, `1 line(s) of ${log} are not audit records (skipped)`);
});

test('--user picks one user\'s records, by name or uid, including records that carry only the uid', () => {
  const mine = json('--user', alice.name);
  assert.ok(mine.length >= 3, JSON.stringify(mine));
  assert.ok(mine.every((x) => (x.caller?.uid ?? x.uid) === alice.uid), JSON.stringify(mine));
  assert.equal(json('--user', String(alice.uid)), mine);
  assert.ok(mine.some((x) => x.event === 'session-end'), 'the session end (no caller field) is hers too');
  const bobs = json('--user', bob.name);
  assert.equal(bobs.filter((x) => x.event === 'request').map((x) => [x.request?.bridges, x.result, x.code]), [[['br1'], 'error', 'DENIED'], [['br0'], 'ok', undefined]]);
});

test('--bridge picks the records that name a bridge, asked for or made', () => {
  const br1 = json('--bridge', 'br1');
  assert.equal(br1.filter((x) => x.event === 'request').map((x) => x.caller?.user), [alice.name, bob.name]);
  assert.ok(json('--bridge', 'br9').length === 0);
  assert.equal(json('--bridge', 'br1', '--user', bob.name).map((x) => x.code), ['DENIED']);
});

test('--since leaves out what is older: the record of two days ago is in the whole log and under --since 3d, not under --since 1d or 1h30m', () => {
  const isOld = (x: Rec): boolean => JSON.stringify(x).includes('xkvmold00000');
  assert.ok(json().some(isOld));
  assert.ok(json('--since', '3d').some(isOld));
  assert.not.ok(json('--since', '1d').some(isOld));
  const recent = json('--since', '1h30m');
  assert.not.ok(recent.some(isOld));
  assert.ok(recent.length > 0);
});

test('the readable form is one line a record: time, user(uid), op, bridges, decision, result and code, taps', () => {
  const r = audit('--user', bob.name, '--bridge', 'br1');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.lines.length, 1, r.lines.join('\n'));
  assert.match(r.lines[0]!, new RegExp(`^20\\d\\d-\\S+Z ${bob.name}\\(${bob.uid}\\) make-nics br1 deny error DENIED "`));
  const ok = audit('--user', alice.name, '--since', '1h');
  assert.ok(ok.lines.some((l) => new RegExp(`^\\S+ ${alice.name}\\(${alice.uid}\\) make-nics br0,br1 allow ok xkvm\\w+,xkvm\\w+$`).test(l)), ok.lines.join('\n'));
});

test('a bad --since is a usage error (exit 2) saying what is expected; a policy without audit-log, or an unreadable file, exit 4 saying what to do', () => {
  const bad = audit('--since', 'yesterday');
  assert.is(bad.status, 2);
  assert.match(bad.stderr, '--since "yesterday" is not a duration: expected e.g. 90s, 15m, 2h, 1d, 1w or 1h30m');
  const none = scratch.policy([`allow br0 ${alice.name}`], 'nolog.conf');
  const r = spawnSync(process.execPath, [HELPER_MAIN, 'audit', '--config', none], { encoding: 'utf8' });
  assert.is(r.status, 4);
  assert.match(r.stderr, 'names no audit-log');
  const missing = audit('--file', join(scratch.dir, 'nope.log'));
  assert.is(missing.status, 4);
  assert.match(missing.stderr, 'no such file');
});

test.run();
