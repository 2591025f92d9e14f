/**
 * Issue 9, item 7: the helper acts as root on what its state directory holds (it deletes the taps
 * a session record names), so that directory must be one only root can change, and a record is
 * used only when every field is what a helper writes.
 *
 * Replayed as real users against a real helper in a namespace: an ordinary user makes a state
 * directory of her own and plants a record there naming a victim's tap; an admin starting the
 * helper on it must get a refusal naming the directory (exit 4), and the victim's tap must stay.
 * A record with `pid: -1` in a proper directory (a corrupt file: no user can write there) is
 * audited and skipped, and the helper starts and reaps the good records beside it.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, statSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { StateDirError, trustedStateDir } from '../../../helper/src/records/store.js';
import { createNetns, createTestUser, removeTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { HELPER_MAIN, makeScratch, startSocketHelper, stop, watch, type Scratch, type Watched } from '../../support/helper-proc.js';
import { present } from '../../support/taps.js';
import { waitFor, within } from '../../support/wait.js';

let ns: Netns;
let mallory: TestUser;
let victim: TestUser;
let scratch: Scratch;

test.before(() => {
  if (process.geteuid?.() !== 0) throw new Error('this suite must run as root: it starts the helper and runs ordinary users');
  sweepStaleNetns();
  mallory = createTestUser('m');
  victim = createTestUser('v');
  ns = createNetns({ bridges: ['br0'] });
  scratch = makeScratch('sd');
});

test.after(() => {
  scratch?.remove();
  ns?.destroy();
  for (const u of [mallory, victim]) if (u !== undefined) removeTestUser(u);
});

/** A tap as the helper makes them, owned by `user`, on br0. */
function tapOf(user: TestUser): string {
  const tap = `xkvm${randomBytes(4).toString('hex')}`;
  ns.ip('tuntap', 'add', 'dev', tap, 'mode', 'tap', 'user', String(user.uid));
  ns.ip('link', 'set', 'dev', tap, 'master', 'br0', 'up');
  return tap;
}

/** A session record whose client and helper are long gone (no process has pid 99999999). */
function orphanRecord(id: string, uid: number, tap: string, client = { pid: 99_999_999, start: '1' }): string {
  return JSON.stringify({ version: 1, id, uid, client, helper: { pid: 99_999_998, start: '1' }, nics: [{ bridge: 'br0', tap, type: 'brctl' }] });
}

/** The helper on `stateDir`, watched; resolves when it serves or exits, whichever comes first. */
async function startOn(stateDir: string, config: string): Promise<Watched> {
  const helper = watch(ns.spawn([process.execPath, HELPER_MAIN, '--config', config, '--state-dir', stateDir, '--socket', join(scratch.dir, `h${randomBytes(2).toString('hex')}.sock`)],
    { stdio: ['ignore', 'pipe', 'pipe'] }));
  await waitFor(() => helper.exit() !== undefined || helper.audits.some((a) => a.event === 'helper-start'), 15_000,
    { what: 'the helper to serve or exit', describe: () => helper.stderr() });
  return helper;
}

test('a state directory a user made, with a record she planted naming a victim\'s tap: the helper refuses to start, naming the directory (exit 4), and the tap stays', async () => {
  const victimTap = tapOf(victim);
  const config = scratch.policy([`allow br0 ${mallory.name} ${victim.name}`]);
  // As mallory: a folder of her own under /tmp, and in it a record that says the victim's tap
  // belongs to a session whose client is gone.
  const dir = `/tmp/xkvmt${process.pid}-mallory-state`;
  const id = randomBytes(8).toString('hex');
  const planted = ns.exec(['/bin/sh', '-c', 'mkdir -m 0755 "$1" && cat > "$1/$2"', 'sh', dir, `${id}.json`],
    { user: mallory.name, input: orphanRecord(id, victim.uid, victimTap) });
  let helper: Watched | undefined;
  try {
    assert.is(planted.status, 0, planted.stderr);
    helper = await startOn(dir, config);
    assert.equal(present(ns, [victimTap]), [victimTap], 'the victim\'s tap is still there');
    assert.ok(existsSync(join(dir, `${id}.json`)), 'nothing was acted on, not even the planted file');
    const exit = await within(helper.exited, 10_000, 'the helper to refuse to start');
    assert.is(exit.code, 4, `exit status; stderr: ${helper.stderr()}`);
    assert.match(helper.stderr(), `refusing the state directory ${dir}: it is owned by uid ${mallory.uid}, not root`);
    assert.is(helper.stderr().trim().split('\n').length, 1, `one line: ${helper.stderr()}`);
  } finally {
    if (helper !== undefined) await stop(helper);
    rmSync(dir, { recursive: true, force: true });
    if (present(ns, [victimTap]).length > 0) ns.ip('link', 'del', victimTap);
  }
});

test('a state directory that is root\'s but group- or world-writable, or a symlink, or under a user\'s folder, is refused too; a missing one is made 0700', () => {
  const base = mkdtempSync('/tmp/xkvmsd-');
  try {
    chmodSync(base, 0o755);
    const open = join(base, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o1777);
    const refused = (dir: string, why: string): void => {
      assert.throws(() => trustedStateDir(dir), (e: unknown) => e instanceof StateDirError && e.code === 'STATE_DIR_UNSAFE'
        && e.message.startsWith(`refusing the state directory ${dir}: `) && e.message.includes(why), `${dir}: ${why}`);
    };
    refused(open, 'writable by group or others (mode 1777)');
    const link = join(base, 'link');
    mkdirSync(join(base, 'real'), { mode: 0o700 });
    symlinkSync(join(base, 'real'), link);
    refused(link, 'it is a symbolic link');
    // Under a folder a user owns, nothing is made at all.
    const users = join(base, 'users');
    mkdirSync(users, { mode: 0o755 });
    chmodSync(users, 0o755);
    const { uid } = mallory;
    chownSync(users, uid, mallory.gid);
    refused(join(users, 'a', 'b'), `it would be made in ${users}, and its directory ${users} is owned by uid ${uid}, not root`);
    assert.not.ok(existsSync(join(users, 'a')), 'nothing made under a user\'s folder');
    // Missing, under root's folders: made, 0700.
    const fresh = join(base, 'x', 'sessions');
    assert.is(trustedStateDir(fresh), fresh);
    assert.is(statSync(fresh).mode & 0o7777, 0o700);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a record with pid -1 in a proper state directory is audited and skipped: the helper starts, and reaps the good record beside it', async () => {
  const state = join(scratch.dir, 'sessions-bad');
  mkdirSync(state, { mode: 0o700 });
  const config = scratch.policy([`allow br0 ${mallory.name}`]);
  const bad = randomBytes(8).toString('hex');
  const badTap = tapOf(mallory);
  writeFileSync(join(state, `${bad}.json`), orphanRecord(bad, mallory.uid, badTap, { pid: -1, start: '1' }), { mode: 0o600 });
  const good = randomBytes(8).toString('hex');
  const goodTap = tapOf(mallory);
  writeFileSync(join(state, `${good}.json`), orphanRecord(good, mallory.uid, goodTap), { mode: 0o600 });
  // The good record's tap is in the ledger, as the helper that made it would have left it (a
  // record alone never gets a tap deleted: the ledger says what the helper made).
  const ifindex = (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', goodTap)) as { ifindex: number }[])[0]!.ifindex;
  mkdirSync(join(state, 'ledger'), { mode: 0o700 });
  writeFileSync(join(state, 'ledger', `${mallory.uid}.json`), JSON.stringify({
    version: 1, uid: mallory.uid, entries: [{
      tap: goodTap, bridge: 'br0', type: 'brctl', ifindex, uid: mallory.uid, lifetime: 'session', session: good, helper: { pid: 99_999_998, start: '1' }, time: 'then',
    }],
  }), { mode: 0o600 });
  let helper: Watched | undefined;
  try {
    helper = await startOn(state, config);
    assert.is(helper.exit(), undefined, `the helper serves; stderr: ${helper.stderr()}`);
    const skipped = await helper.audit((a) => a.event === 'session-record' && a['file'] === `${bad}.json`, 5000, 'the bad record to be reported');
    assert.is(skipped['result'], 'unreadable');
    assert.match(String(skipped['message']), /client is not a process/);
    await waitFor(() => present(ns, [goodTap]).length === 0, 5000, { what: 'the good orphan record\'s tap to be reaped' });
    assert.is(helper.audits.find((a) => a.event === 'session-reaped')?.['session'], good);
    assert.equal(present(ns, [badTap]), [badTap], 'nothing is done with what the bad record names');
    assert.ok(existsSync(join(state, `${bad}.json`)), 'the bad record is left for an admin to look at');
  } finally {
    if (helper !== undefined) await stop(helper);
    if (present(ns, [badTap]).length > 0) ns.ip('link', 'del', badTap);
  }
});

test('the installed state directory and the policy\'s checks agree: the scratch folders every suite uses are accepted', async () => {
  const config = scratch.policy([`allow br0 ${mallory.name}`]);
  const helper = await startSocketHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket });
  try {
    assert.is(helper.exit(), undefined);
    assert.ok(existsSync(scratch.state));
  } finally {
    await stop(helper);
  }
});

test.run();
