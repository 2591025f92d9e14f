/**
 * The real thing, as root on this machine: install into the real paths with --group, then ask
 * the real polkitd (pkcheck) and run the real pkexec as a member and as a non-member; uninstall
 * and check everything is gone. The launcher points at a stub main that prints what it got.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ACTION_ID } from '../../../helper/src/install/action.js';
import { install } from '../../../helper/src/install/install.js';
import { DEFAULT_PATHS as P } from '../../../helper/src/install/paths.js';
import { uninstall } from '../../../helper/src/install/uninstall.js';
import type { TestUser } from '../../support/netns.js';
import { startPolkit, type Polkit } from '../../support/polkit.js';
import { procStat, procUid } from '../../support/procs.js';
import { groupWithMember, INSTALLED_FILES as OURS, type GroupWithMember } from '../../support/system-install.js';
import { waitFor } from '../../support/wait.js';
import { fakeCheckout } from './support.js';

let daemons: Polkit | undefined;
let checkout: ReturnType<typeof fakeCheckout> | undefined;
let people: GroupWithMember | undefined;
let member: TestUser;
let outsider: TestUser;
let configExisted = false;

test.before(async () => {
  if (process.geteuid?.() !== 0) throw new Error('this suite must run as root: it installs into /usr, /etc and /var');
  const present = OURS.filter((p) => existsSync(p));
  if (present.length > 0) {
    throw new Error(`refusing to overwrite an existing installation (${present.join(', ')}); run xkvm-helper uninstall first`);
  }
  configExisted = existsSync(P.config);
  people = groupWithMember();
  ({ member, outsider } = people);
  daemons = await startPolkit();
  checkout = fakeCheckout();
  // Built like the real one: with the bundled xkvm-bridge-helper, whose launcher install writes too.
  checkout.write('dist/bin/xkvm-bridge-helper.cjs', 'process.exit(1);\n');
});

test.after(async () => {
  if (OURS.some((p) => existsSync(p))) uninstall({ out: () => {} });
  await daemons?.stop();
  checkout?.done();
  people?.remove();
});

/** pkcheck's exit status for a process running as `user` (0 authorised, 1 not, 2 only after authentication). */
async function pkcheck(user: TestUser): Promise<number | null> {
  const sleeper = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', 'sleep', '30'], { stdio: 'ignore' });
  try {
    const pid = sleeper.pid ?? -1;
    const { value: started } = await waitFor(() => procUid(pid) === user.uid && procStat(pid)?.start, 10_000, { what: `sleep to run as ${user.name}` });
    // pkcheck --process PID,START_TIME,UID
    return spawnSync('pkcheck', ['--action-id', ACTION_ID, '--process', `${pid},${started},${user.uid}`], { timeout: 10_000 }).status;
  } finally {
    sleeper.kill('SIGKILL');
  }
}

function pkexec(user: TestUser, args: readonly string[]) {
  return spawnSync('runuser', ['-u', user.name, '--', '/usr/bin/pkexec', '--disable-internal-agent', P.launcher, ...args],
    { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** pkcheck's status once it is `want` (polkitd reloads actions and rules when their folders change). */
async function pkcheckSettles(user: TestUser, want: number): Promise<number | null> {
  let last: number | null = null;
  await waitFor(async () => (last = await pkcheck(user)) === want, 10_000, { what: `pkcheck to say ${want}`, intervalMs: 200 }).catch(() => undefined);
  return last;
}

test('install --group writes the real files, and polkitd knows the action with the launcher as exec.path', async () => {
  const printed: string[] = [];
  await install({ helperMain: checkout!.main, group: people!.group.name, out: (l) => printed.push(l) });
  for (const p of OURS) assert.ok(existsSync(p), p);
  let shown = '';
  await waitFor(() => {
    const r = spawnSync('pkaction', ['--action-id', ACTION_ID, '--verbose'], { encoding: 'utf8' });
    shown = r.stdout;
    return r.status === 0;
  }, 10_000, { what: 'pkaction to list the action', intervalMs: 100 });
  assert.match(shown, new RegExp(`org\\.freedesktop\\.policykit\\.exec\\.path -> ${P.launcher}`));
  assert.match(shown, /implicit any: +no/);
  assert.match(shown, /implicit active: +auth_admin/);
});

test('pkcheck: a member of the group is authorised without authentication', async () => {
  assert.is(await pkcheckSettles(member, 0), 0);
});

test('pkcheck: a user outside the group is not authorised', async () => {
  assert.is(await pkcheck(outsider), 1);
});

test('pkexec runs the launcher as root for a member, with PKEXEC_UID and only --stdio', () => {
  const r = pkexec(member, ['--stdio']);
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { uid: 0, euid: 0, pkexecUid: String(member.uid), argv: ['--stdio'] });
});

test('pkexec refuses a user outside the group with status 127 and runs nothing', () => {
  const r = pkexec(outsider, ['--stdio']);
  assert.is(r.status, 127, r.stderr);
  assert.is(r.stdout, '');
});

test('pkexec refuses even a member when the first argument is not --stdio (exec.argv1)', () => {
  const r = pkexec(member, ['--config', '/tmp/mine.conf']);
  assert.is(r.status, 127, r.stderr);
  assert.is(r.stdout, '');
});

test('uninstall removes everything, after which the member is refused too', async () => {
  uninstall({ out: () => {} });
  for (const p of OURS) assert.not.ok(existsSync(p), p);
  if (!configExisted) assert.not.ok(existsSync(P.config));
  assert.not.ok(existsSync('/usr/local/libexec/xkvm'));
  await waitFor(() => spawnSync('pkaction', ['--action-id', ACTION_ID]).status !== 0, 10_000, { what: 'polkitd to forget the action', intervalMs: 100 });
  const r = pkexec(member, ['--stdio']);
  assert.is(r.status, 127, r.stderr);
});

test.run();
