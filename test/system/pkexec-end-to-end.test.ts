/**
 * The pkexec path end to end, for real, as root on this machine: `xkvm-helper install --group G`,
 * a real system bus and polkitd, /etc/xkvm/helper.conf allowing @G on br0, and the real client
 * run by a member and by an outsider with no helper socket anywhere, so that it falls back to
 * `pkexec /usr/local/libexec/xkvm/xkvm-helper --stdio`. Then `xkvm-helper uninstall`.
 *
 * br0 lives in a network namespace: the client, pkexec and the helper it starts all run inside
 * it (`ip netns exec NS runuser -u M -- ...`), while pkexec reaches polkitd over the system bus
 * socket in /run/dbus, which namespaces of the network kind do not separate.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { ACTION_ID } from '../../helper/src/install/action.js';
import { createNetns, sweepStaleNetns, type Netns, type TestUser } from '../support/netns.js';
import { makeScratch, runXkvm, startHolder, startSocketHelper, startXkvm, stop, type Holder, type Watched } from '../support/helper-proc.js';
import { openPkexecSession, type PkexecSession } from '../support/pkexec-session.js';
import { actionKnown, PKEXEC, startPolkit, type Polkit } from '../support/polkit.js';
import { descendants, findDescendant, isRunning, procUid, signal } from '../support/procs.js';
import {
  groupWithMember, helperCli, INSTALLED_FILES, PATHS, refuseIfInstalled, requireRoot, savePolicy, tearDown, writePolicy,
  type GroupWithMember,
} from '../support/system-install.js';
import { helperTaps } from '../support/taps.js';
import { waitFor, within } from '../support/wait.js';

let group = '';
let people: GroupWithMember | undefined;
/** Where pkexec'd helpers keep session records (they take no --state-dir). */
const STATE_DIR = '/run/xkvm/sessions';

let ns: Netns;
let polkit: Polkit | undefined;
let member: TestUser;
let outsider: TestUser;
let saved: ReturnType<typeof savePolicy> | undefined;
/** Set once this suite has installed: only then may it uninstall (never someone else's installation). */
let installed = false;

test.before(() => {
  requireRoot('this suite');
  refuseIfInstalled();
  sweepStaleNetns();
  people = groupWithMember();
  ({ member, outsider } = people);
  group = people.group.name;
  saved = savePolicy();
  ns = createNetns({ bridges: ['br0'] });
});

test.after(async () => {
  try {
    if (installed) tearDown(saved);
  } finally {
    await polkit?.stop();
    ns?.destroy();
    people?.remove();
  }
});

/** `pkexec LAUNCHER ARGS` as `user` in the namespace, stdin from /dev/null. */
function pkexecHelper(user: TestUser, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  return ns.exec([PKEXEC, PATHS.launcher, ...args], { user: user.name, timeoutMs: 30_000 });
}

test('install --group writes the launcher, the polkit action with exec.path and the group rule; polkitd lets a member run the launcher', async () => {
  installed = true;
  const r = helperCli(['install', '--group', group]);
  assert.is(r.status, 0, r.stderr);
  for (const p of INSTALLED_FILES) assert.ok(existsSync(p), `${p} written`);
  assert.match(r.stdout, new RegExp(PATHS.launcher.replace(/\//g, '\\/')));
  const launcher = statSync(PATHS.launcher);
  assert.is(launcher.uid, 0);
  assert.is(launcher.mode & 0o7777, 0o755);
  assert.ok(readFileSync(PATHS.launcher, 'utf8').startsWith(`#!${process.execPath}\n`));
  assert.match(readFileSync(PATHS.action, 'utf8'), /org\.freedesktop\.policykit\.exec\.argv1">--stdio</);
  assert.match(readFileSync(PATHS.rule, 'utf8'), new RegExp(`isInGroup\\("${group}"\\)`));
  writePolicy(['# written by test/system/pkexec-end-to-end', `allow br0 @${group}`]);

  polkit = await startPolkit();
  await waitFor(() => actionKnown(ACTION_ID), 10_000, { what: `polkitd to know ${ACTION_ID}`, intervalMs: 100 });
  // The helper under pkexec with stdin at EOF: serves no request and exits 0. (Waiting also lets a
  // polkitd that was already running pick the rule up.)
  const probe = await waitFor(() => {
    const p = pkexecHelper(member, ['--stdio']);
    return p.status === 0 ? p : undefined;
  }, 10_000, { what: 'pkexec to run the launcher for the member', intervalMs: 200, describe: () => JSON.stringify(pkexecHelper(member, ['--stdio'])) });
  assert.is(probe.value.stdout, '');
});

test('a member with no helper socket runs xkvm tap-control make-nics br0: it goes through pkexec, prints TAP:brctl, exits 0, and the tap is the member\'s', async () => {
  assert.not.ok(existsSync(PATHS.socket), 'no installed socket: the client must use pkexec');
  const xkvm = startXkvm(ns, member.name, ['tap-control', 'make-nics', 'br0']);
  let tap: string | undefined;
  try {
    const line = await xkvm.line((l) => /^xkvm[a-z2-7]{8}:brctl$/.test(l), 20_000, 'TAP:brctl');
    tap = line.split(':')[0]!;
    const dev = helperTaps(ns).find((d) => d.name === tap);
    assert.is(dev?.owner, member.name);
    assert.is(dev?.master, 'br0');
    const exit = await within(xkvm.exited, 10_000, 'xkvm tap-control make-nics to exit after printing').catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; stdout: ${JSON.stringify(xkvm.stdout())}`);
    });
    assert.is(exit.code, 0, xkvm.stderr());
    assert.is(xkvm.stdout(), `${tap}:brctl\n`);
    assert.is(helperTaps(ns).find((d) => d.name === tap)?.owner, member.name, 'the tap persists after the client');
  } finally {
    await stop(xkvm);
    if (tap !== undefined) spawnSync('/usr/sbin/ip', ['-n', ns.name, 'link', 'del', tap]);
  }
});

test('xkvm doctor finds the helper through pkexec and asks polkit (without prompting): a member needs no password; for an outsider polkit says no, which fails a bridged VM', async () => {
  const asMember = await runXkvm(ns, member.name, ['doctor']);
  assert.match(asMember.stdout, `ok   helper: no socket; through /usr/bin/pkexec ${PATHS.launcher}: polkit lets you run it without a password`);
  const asOutsider = await runXkvm(ns, outsider.name, ['doctor', '--netdev', 'br0']);
  assert.match(asOutsider.stdout, `FAIL helper: no socket; through /usr/bin/pkexec ${PATHS.launcher}: polkit does not let you run it; fix: ask an admin to install with --group GROUP and add you to GROUP`);
  assert.is(asOutsider.code, 1);
});

test('a user outside the group gets one clear line and a non-zero status from xkvm tap-control make-nics br0, and no tap is made', async () => {
  const xkvm = startXkvm(ns, outsider.name, ['tap-control', 'make-nics', 'br0']);
  const exit = await within(xkvm.exited, 20_000, 'xkvm to fail').finally(() => xkvm.kill());
  assert.is.not(exit.code, 0);
  assert.is(xkvm.stdout(), '');
  const message = xkvm.stderr().trim();
  assert.is(message.split('\n').length, 1, `one line: ${xkvm.stderr()}`);
  assert.match(message, /^xkvm: /);
  assert.match(message, /not authori[sz]ed|denied|refused|polkit|pkexec/i);
  console.log(`outsider through pkexec (exit ${exit.code}): ${message}`);
  assert.equal(helperTaps(ns), []);
});

test('a member\'s VM through pkexec: xkvm -n br0 boots qemu (TCG) on the member\'s tap, handed over as an fd (not persistent), DHCP from its MAC is seen on br0, and SIGTERM to the client removes the tap within 2 s', async () => {
  const capture = ns.spawn(['/usr/bin/tcpdump', '-i', 'br0', '-n', '-e', '-l', 'udp port 67']);
  let captured = '';
  capture.stdout?.on('data', (d: Buffer) => { captured += d.toString(); });
  capture.stderr?.on('data', (d: Buffer) => { captured += d.toString(); });
  await waitFor(() => captured.includes('listening on'), 10_000, { what: 'tcpdump to listen on br0' });
  const xkvm: Watched = startXkvm(ns, member.name, ['-v', '-n', 'br0,macaddr=:09', '--', '-m', '64', '-nographic', '-boot', 'n']);
  try {
    await waitFor(() => captured.split('\n').some((l) => l.includes('52:54:00:12:34:09') && /BOOTP\/DHCP, Request/.test(l)), 90_000,
      { what: 'a DHCP request from 52:54:00:12:34:09 on br0', describe: () => `capture ${captured.slice(-300)}; stderr ${xkvm.stderr()}` });
    assert.match(xkvm.stdout(), 'iPXE', 'the console reaches the member through the pty');
    const { value: tap } = await waitFor(() => helperTaps(ns).find((d) => d.owner === member.name && d.attached), 30_000,
      { what: 'qemu to hold a tap owned by the member', describe: () => `taps ${JSON.stringify(helperTaps(ns))}; stderr ${xkvm.stderr()}` });
    assert.is(tap.master, 'br0');
    assert.is(tap.persist, false, 'fd handoff (the default) over pkexec: the tap dies with its last fd');
    assert.match(xkvm.stderr(), /-netdev type=tap,id=net00,fd=\d+ /, 'qemu is given the tap as an fd (-v shows its argv)');
    const client = findDescendant(xkvm.pid, (p) => p.comm === 'node' && procUid(p.pid) === member.uid);
    assert.ok(client !== undefined, 'the xkvm process');
    // pkexec exec'd the helper as the client's child, running as root.
    const helper = findDescendant(client.pid, (p) => p.ppid === client.pid && procUid(p.pid) === 0);
    assert.ok(helper !== undefined, 'the helper, a root child of the client');
    const qemu = findDescendant(client.pid, (p) => p.comm.startsWith('qemu-system'));
    assert.ok(qemu !== undefined && procUid(qemu.pid) === member.uid, 'qemu runs as the member');

    const sent = Date.now();
    signal(client.pid, 'SIGTERM');
    await waitFor(() => !helperTaps(ns).some((d) => d.name === tap.name), 2000,
      { since: sent, what: `tap ${tap.name} to be gone after SIGTERM to the client` });
    const exit = await within(xkvm.exited, 10_000, 'the client to exit');
    assert.is.not(exit.code, 0, 'the client reports that it was stopped');
    await waitFor(() => !isRunning(helper.pid) && !isRunning(qemu.pid), 5000, { what: 'the helper and qemu to end' });
  } finally {
    capture.kill('SIGTERM');
    await stop(xkvm);
  }
});

test('a member\'s VM through pkexec, then SIGKILL of client, qemu and the pkexec\'d helper together: no tap is left within 2 s', async () => {
  const xkvm: Watched = startXkvm(ns, member.name, ['-n', 'br0', '--', '-m', '64', '-nographic', '-boot', 'n']);
  try {
    // An fd tap shows as attached while the helper still holds it: wait for qemu itself too.
    const { value: tap } = await waitFor(() => {
      const running = descendants(xkvm.pid).some((p) => p.comm.startsWith('qemu-system'));
      return running ? helperTaps(ns).find((d) => d.owner === member.name && d.attached) : undefined;
    }, 30_000, { what: 'qemu to run and hold a tap owned by the member', describe: () => `taps ${JSON.stringify(helperTaps(ns))}; stderr ${xkvm.stderr()}` });
    const client = findDescendant(xkvm.pid, (p) => p.comm === 'node' && procUid(p.pid) === member.uid);
    assert.ok(client !== undefined, 'the xkvm process');
    const helper = findDescendant(client.pid, (p) => p.ppid === client.pid && procUid(p.pid) === 0);
    const qemu = findDescendant(client.pid, (p) => p.comm.startsWith('qemu-system'));
    assert.ok(helper !== undefined && qemu !== undefined, 'the helper and qemu');
    const killed = Date.now();
    for (const pid of [client.pid, qemu.pid, helper.pid]) signal(pid, 'SIGKILL');
    await waitFor(() => !helperTaps(ns).some((d) => d.name === tap.name), 2000, { since: killed, what: `tap ${tap.name} to be gone` });
    assert.equal(helperTaps(ns), []);
  } finally {
    await stop(xkvm);
  }
});

test('a socket helper and 3 pkexec helpers on the same state folder (/run/xkvm/sessions) at once: distinct taps, all the member\'s, all gone when the sessions end', async () => {
  const scratch = makeScratch('sp');
  let socketHelper: Watched | undefined;
  let holder: Holder | undefined;
  const sessions: PkexecSession[] = [];
  try {
    socketHelper = await startSocketHelper(ns, { config: PATHS.config, stateDir: STATE_DIR, socket: scratch.socket });
    holder = startHolder(ns, member.name, { socket: scratch.socket, bridges: ['br0', 'br0'], connections: 4, waitGo: true });
    await holder.ready(15_000);
    holder.go();
    for (let i = 0; i < 3; i += 1) {
      sessions.push(openPkexecSession(ns, member.name, PATHS.launcher, { v: 1, id: 1, op: 'make-nics', bridges: ['br0'], lifetime: 'session' }));
    }
    const viaSocket = (await holder.result(30_000)).results;
    const viaPkexec = await Promise.all(sessions.map((p) => p.reply(30_000)));
    const taps: string[] = [];
    for (const r of viaSocket) {
      assert.ok(r.ok, JSON.stringify(r));
      if (r.ok) taps.push(...r.nics.map((n) => n.tap));
    }
    for (const r of viaPkexec) {
      assert.is(r['ok'], true, JSON.stringify(r));
      taps.push(...(r['nics'] as Array<{ tap: string }>).map((n) => n.tap));
    }
    assert.is(taps.length, 11);
    assert.is(new Set(taps).size, 11, 'every name distinct');
    const devices = helperTaps(ns);
    assert.equal(devices.map((d) => d.name).sort(), [...taps].sort(), 'no other tap');
    for (const d of devices) {
      assert.is(d.owner, member.name);
      assert.is(d.master, 'br0');
    }
    const closed = Date.now();
    holder.release();
    for (const p of sessions) p.release();
    await waitFor(() => helperTaps(ns).length === 0, 2000, { since: closed, what: 'every tap to be gone' });
    for (const p of sessions) assert.is(await within(p.exited, 10_000, 'pkexec to exit'), 0);
  } finally {
    for (const p of sessions) p.kill();
    if (holder !== undefined) await stop(holder);
    if (socketHelper !== undefined) await stop(socketHelper);
    scratch.remove();
  }
});

test('xkvm-helper uninstall removes the launcher, the polkit action and rule and the units; the edited policy is kept for the admin', async () => {
  const r = helperCli(['uninstall']);
  assert.is(r.status, 0, r.stderr);
  for (const p of INSTALLED_FILES) assert.not.ok(existsSync(p), `${p} removed`);
  assert.not.ok(existsSync('/usr/local/libexec/xkvm'), 'the launcher folder is gone');
  assert.ok(existsSync(PATHS.config), 'an edited helper.conf is kept');
  assert.match(r.stdout, /kept/);
  await waitFor(() => !actionKnown(ACTION_ID), 10_000, { what: 'polkitd to forget the action', intervalMs: 100 });
  assert.is(pkexecHelper(member, ['--stdio']).status, 127, 'pkexec refuses once the action is gone');
});

test.run();
