/**
 * Issue 9, item 7: root appends every audit record to the policy's `audit-log`. A user who can put
 * a symbolic link at that path makes root append to a file of her choosing. So the file must be
 * in a directory only root can change (checked like the policy file's directories), at start
 * (refused: exit 3, naming it) and whenever a policy reload names another (refused with an audit
 * record, never followed; the previous file stays in use); and each record is appended with
 * O_NOFOLLOW, so even a link in root's own directory is never written through.
 *
 * Replayed against a real helper in a namespace, the links planted by a real ordinary user.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createNetns, createTestUser, removeTestUser, sweepStaleNetns, type Netns, type TestUser } from '../../support/netns.js';
import { HELPER_MAIN, makeScratch, startHolder, stop, watch, type Holder, type Scratch, type Watched } from '../../support/helper-proc.js';
import { waitFor, within } from '../../support/wait.js';

let ns: Netns;
let mallory: TestUser;
let scratch: Scratch;
/** A file of root's that mallory would like root to append to (think /etc/cron.d/x). */
let target = '';
const ORIGINAL = 'root\'s own file\n';

test.before(() => {
  if (process.geteuid?.() !== 0) throw new Error('this suite must run as root: it starts the helper and runs an ordinary user');
  sweepStaleNetns();
  mallory = createTestUser('m');
  ns = createNetns({ bridges: ['br0'] });
  scratch = makeScratch('al');
  target = join(scratch.dir, 'target');
  writeFileSync(target, ORIGINAL, { mode: 0o644 });
});

test.after(() => {
  scratch?.remove();
  ns?.destroy();
  if (mallory !== undefined) removeTestUser(mallory);
});

/** A folder under the scratch folder: `owner` mallory or root, with `mode`. */
function folder(name: string, owner: 'mallory' | 'root', mode: number): string {
  const dir = join(scratch.dir, name);
  mkdirSync(dir);
  chmodSync(dir, mode);
  if (owner === 'mallory') chownSync(dir, mallory.uid, mallory.gid);
  return dir;
}

/** As mallory: `ln -s target link`. */
function plantLink(link: string): void {
  const r = ns.exec(['/bin/ln', '-s', target, link], { user: mallory.name });
  assert.is(r.status, 0, r.stderr);
}

/** The helper with this policy, watched; resolves when it serves or exits, whichever comes first. */
async function startWith(lines: readonly string[], name: string): Promise<Watched> {
  const config = scratch.policy([`allow br0 ${mallory.name}`, ...lines], name);
  const socket = join(scratch.dir, `${name}.sock`);
  const helper = watch(ns.spawn([process.execPath, HELPER_MAIN, '--config', config, '--state-dir', join(scratch.dir, `${name}.state`), '--socket', socket],
    { stdio: ['ignore', 'pipe', 'pipe'] }));
  await waitFor(() => helper.exit() !== undefined || helper.audits.some((a) => a.event === 'helper-start'), 15_000,
    { what: 'the helper to serve or exit', describe: () => helper.stderr() });
  return helper;
}

/** One make-nics br0 as mallory on `socket`; returns the holder (the session lasts until release). */
async function asMallory(socket: string): Promise<Holder> {
  const holder = startHolder(ns, mallory.name, { socket, bridges: ['br0'] });
  const { results } = await holder.result(15_000);
  assert.ok(results[0]?.ok, JSON.stringify(results));
  return holder;
}

/** With her link at `dir`/audit.log, the helper must refuse to start, saying why, and append nothing. */
async function refusedAtStart(dir: string, why: string): Promise<void> {
  const log = join(dir, 'audit.log');
  plantLink(log);
  const helper = await startWith([`audit-log ${log}`], `${basename(dir)}.conf`);
  try {
    const exit = await within(helper.exited, 10_000, 'the helper to refuse to start');
    assert.is(exit.code, 3, helper.stderr());
    assert.match(helper.stderr(), `refusing audit-log ${log}: its directory ${dir} cannot be trusted: ${why}`);
    assert.is(readFileSync(target, 'utf8'), ORIGINAL);
  } finally {
    await stop(helper);
  }
}

test('audit-log in a folder of the user\'s, where she put a link to a file of root\'s: the helper refuses to start (exit 3, naming it) and root appends nothing there', async () => {
  await refusedAtStart(folder('mine', 'mallory', 0o755), `it is owned by uid ${mallory.uid}, not root`);
});

test('audit-log in a root folder anyone may write to (sticky, like /tmp), where she put a link: refused at start too, and nothing appended', async () => {
  await refusedAtStart(folder('shared', 'root', 0o1777), 'it is writable by group or others (mode 1777)');
});

test('a policy reload that points audit-log at her folder is refused and audited: the records go on to the previous file, never through her link', async () => {
  const safeDir = folder('logs', 'root', 0o750);
  const safe = join(safeDir, 'audit.log');
  const dir = folder('later', 'mallory', 0o755);
  const log = join(dir, 'audit.log');
  plantLink(log);
  const helper = await startWith([`audit-log ${safe}`], 'reload.conf');
  const holders: Holder[] = [];
  try {
    assert.is(helper.exit(), undefined, helper.stderr());
    const socket = join(scratch.dir, 'reload.conf.sock');
    holders.push(await asMallory(socket));
    assert.match(readFileSync(safe, 'utf8'), /"event":"request"/);
    // The admin (or anyone who can edit it) points the policy elsewhere; the next request reloads it.
    scratch.policy([`allow br0 ${mallory.name}`, `audit-log ${log}`, '# edited'], 'reload.conf');
    holders.push(await asMallory(socket));
    const refused = await helper.audit((a) => a.event === 'audit-log', 10_000, 'the refusal of the new audit-log');
    assert.is(refused['result'], 'refused');
    assert.is(refused['file'], log);
    assert.match(String(refused['message']), `owned by uid ${mallory.uid}, not root`);
    const kept = readFileSync(safe, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    assert.ok(kept.some((r) => r.event === 'audit-log'), 'the refusal is in the file still in use');
    assert.is(kept.filter((r) => r.event === 'request').length, 2, 'both requests are in the file still in use');
    assert.is(readFileSync(target, 'utf8'), ORIGINAL, 'root never appended through the link');
  } finally {
    for (const h of holders) await stop(h);
    await stop(helper);
  }
});

test('a symbolic link at the audit-log path, even in root\'s own folder, is never written through (O_NOFOLLOW): stderr says so', async () => {
  const dir = folder('rootonly', 'root', 0o755);
  const log = join(dir, 'audit.log');
  symlinkSync(target, log);
  const helper = await startWith([`audit-log ${log}`], 'link.conf');
  try {
    assert.is(helper.exit(), undefined, helper.stderr());
    await waitFor(() => helper.stderr().includes(`cannot append to audit-log ${log}: it is a symbolic link, which is never followed`), 10_000,
      { what: 'the refusal on stderr', describe: () => helper.stderr() });
    assert.is(readFileSync(target, 'utf8'), ORIGINAL);
  } finally {
    await stop(helper);
  }
});

test('in a folder of root\'s alone, the file is made 0640 and each record is appended as one line', async () => {
  const dir = folder(`ok${randomBytes(2).toString('hex')}`, 'root', 0o750);
  const log = join(dir, 'audit.log');
  const helper = await startWith([`audit-log ${log}`], 'ok.conf');
  try {
    assert.is(helper.exit(), undefined, helper.stderr());
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('"event":"helper-start"'), 10_000, { what: 'helper-start in the file' });
    const holder = await asMallory(join(scratch.dir, 'ok.conf.sock'));
    await stop(holder);
    await waitFor(() => readFileSync(log, 'utf8').includes('"event":"session-end"'), 10_000, { what: 'session-end in the file' });
    assert.is(statSync(log).mode & 0o7777, 0o640);
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    assert.equal(lines.map((l) => (JSON.parse(l) as { event: string }).event), ['helper-start', 'request', 'session-end']);
  } finally {
    await stop(helper);
  }
});

test.run();
