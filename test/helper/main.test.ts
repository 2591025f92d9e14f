// xkvm-helper's exit statuses (README, For admins): the real program, one error family at a
// time. 0 success, 1 policy check denied, 2 usage, 3 the policy cannot be used, 4 another
// error explained in one line, 70 a bug. Every message is one line on stderr.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from '../support/suite.js';
import * as assert from 'uvu/assert';
import { HELPER_MAIN } from '../support/helper-proc.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let dir = '';

function helper(args: string[], opts: { env?: Record<string, string>; node?: string[]; shell?: boolean } = {}): Run {
  // No LISTEN_*, no PKEXEC_UID unless a test sets them.
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...opts.env };
  const r = spawnSync(process.execPath, [...(opts.node ?? []), HELPER_MAIN, ...args], { encoding: 'utf8', env, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A policy file the helper trusts (root-owned, 0644, in a 0700 directory of root's). */
function policy(name: string, text: string, mode = 0o644): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

function oneLine(r: Run, pattern: RegExp): void {
  assert.is(r.stderr.split('\n').length, 2, `one line on stderr: ${r.stderr}`);
  assert.match(r.stderr, /^xkvm-helper: /);
  assert.match(r.stderr, pattern);
}

test.before(() => {
  if (process.geteuid?.() !== 0) throw new Error('this suite needs root: the helper trusts only root-owned policy files');
  dir = mkdtempSync(join(tmpdir(), 'xkvm-main-'));
  chmodSync(dir, 0o700);
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('--help prints the usage and exits 0, as does help on a subcommand; neither is an error', () => {
  for (const args of [['--help'], ['policy', '--help'], ['install', '--help']]) {
    const r = helper(args);
    assert.is(r.status, 0, args.join(' '));
    assert.match(r.stdout, /xkvm-helper/);
    assert.is(r.stderr, '', args.join(' '));
  }
});

test('a usage mistake exits 2 with one line pointing at --help', () => {
  const ok = policy('usage.conf', 'allow br0 root\n');
  for (const args of [['--bogus'], ['--socket', join(dir, 's'), '--stdio', '--config', ok], ['policy', 'check', '--config', ok, '--user', 'root'],
    ['--idle-timeout', '0', '--config', ok], ['--idle-connection-seconds', '0', '--config', ok], ['--max-refusals', '-1', '--config', ok],
    ['--max-refusals', '2.5', '--config', ok], ['policy', 'frobnicate']]) {
    const r = helper(args);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    oneLine(r, /\(see xkvm-helper --help\)$/m);
  }
});

test('serving without a socket (no systemd socket, no --socket, no --stdio) is a usage mistake: 2', () => {
  const r = helper(['--config', policy('nosock.conf', 'allow br0 root\n'), '--state-dir', join(dir, 'state-nosock')]);
  assert.is(r.status, 2);
  oneLine(r, /no socket to serve/);
});

test('under pkexec anything but --stdio is refused with 2, before anything else happens', () => {
  const r = helper(['--socket', join(dir, 'pk.sock')], { env: { PKEXEC_UID: '1000' } });
  assert.is(r.status, 2);
  oneLine(r, /under pkexec only "--stdio" is accepted/);
  assert.not.ok(existsSync(join(dir, 'pk.sock')));
  // the connection limits cannot be loosened by the caller either
  for (const args of [['--stdio', '--max-refusals', '0'], ['--stdio', '--idle-connection-seconds', '3600']]) {
    const refused = helper(args, { env: { PKEXEC_UID: '1000' } });
    assert.is(refused.status, 2, args.join(' '));
    oneLine(refused, /under pkexec only "--stdio" is accepted/);
  }
});

test('a policy that cannot be used exits 3, naming file and line', () => {
  const broken = policy('broken.conf', 'allow br0 root\nbogus line\n');
  for (const args of [['policy', 'show', '--config', broken], ['policy', 'check', '--config', broken, '--user', 'root', '--bridge', 'br0'],
    ['--socket', join(dir, 'p.sock'), '--config', broken, '--state-dir', join(dir, 'state-p')]]) {
    const r = helper(args);
    assert.is(r.status, 3, `${args.join(' ')}: ${r.stderr}`);
    oneLine(r, new RegExp(`${broken}:2: unknown directive "bogus"`));
  }
  const unsafe = policy('unsafe.conf', 'allow br0 root\n', 0o666);
  const r = helper(['policy', 'show', '--config', unsafe]);
  assert.is(r.status, 3);
  oneLine(r, /writable by group or others/);
  const missing = helper(['policy', 'show', '--config', join(dir, 'nothere.conf')]);
  assert.is(missing.status, 3);
  oneLine(missing, /nothere\.conf: cannot read it/);
});

test('policy check: 0 when allowed, 1 when denied, 4 for a user that does not exist', () => {
  const conf = policy('check.conf', 'allow br0 root\n');
  assert.is(helper(['policy', 'check', '--config', conf, '--user', 'root', '--bridge', 'br0']).status, 0);
  const denied = helper(['policy', 'check', '--config', conf, '--user', 'root', '--bridge', 'br1']);
  assert.is(denied.status, 1);
  assert.match(denied.stdout, /^DENY/);
  const unknown = helper(['policy', 'check', '--config', conf, '--user', 'xkvm-no-such-user', '--bridge', 'br0']);
  assert.is(unknown.status, 4);
  oneLine(unknown, /xkvm-no-such-user/);
  assert.not.match(unknown.stderr, /internal error/);
});

test('policy check explains the vlan, mac-lock and max-queues that apply, with their lines; policy show lists them; a vlan conflict exits 3 naming both lines', () => {
  const conf = policy('grants.conf', 'allow br0 root\nvlan br0 42 root\nmac-lock * root\nmax-queues 4 root\n');
  const check = helper(['policy', 'check', '--config', conf, '--user', 'root', '--bridge', 'br0']);
  assert.is(check.status, 0, check.stderr);
  assert.ok(check.stdout.includes([
    `max-queues: 4 (user line ${conf}:4: max-queues 4 root)`,
    `vlan: 42 (user line ${conf}:2: vlan br0 42 root)`,
    `mac-lock: yes, requests must carry the guest's MAC (${conf}:3: mac-lock * root)`,
  ].join('\n') + '\n'), check.stdout);
  const show = helper(['policy', 'show', '--config', conf]);
  assert.is(show.status, 0, show.stderr);
  assert.ok(show.stdout.includes(`vlan 42 on br0 for root (${conf}:2)\nmac-lock on * for root (${conf}:3)\n`), show.stdout);
  assert.ok(show.stdout.includes(`max-queues 4 for root (${conf}:4)\n`), show.stdout);
  const conflict = policy('conflict.conf', 'allow br0 root\nvlan br0 42 root\nvlan br0 43 root\n');
  const r = helper(['policy', 'show', '--config', conflict]);
  assert.is(r.status, 3, r.stderr);
  oneLine(r, new RegExp(`${conflict}:3: user root on br0 already has VLAN 42 at ${conflict}:2; expected one VLAN`));
});

test('policy check --json prints one object with the verdict, the deciding line, the limits and grants, and exits as the text form does', () => {
  const conf = policy('json.conf', 'allow br0 root\nvlan br0 42 root\nmac-lock * root\nmax-queues 4 root\nmax-taps 7\n');
  const scratchState = join(dir, 'json-state');
  const check = helper(['policy', 'check', '--config', conf, '--user', 'root', '--bridge', 'br0', '--json', '--state-dir', scratchState]);
  assert.is(check.status, 0, check.stderr);
  const lines = check.stdout.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, check.stdout);
  assert.equal(JSON.parse(lines[0]!), {
    allowed: true, user: 'root', uid: 0, groups: JSON.parse(lines[0]!).groups, bridge: 'br0',
    rule: `${conf}:1: allow br0 root`, reason: JSON.parse(lines[0]!).reason,
    maxTaps: 7, maxConnections: 16, maxQueues: 4, vlan: 42, vlanConflict: null, macLock: `${conf}:3: mac-lock * root`, taps: { held: 0 },
  });
  const denied = helper(['policy', 'check', '--config', conf, '--user', 'root', '--bridge', 'br1', '--json', '--state-dir', scratchState]);
  assert.is(denied.status, 1);
  const d = JSON.parse(denied.stdout) as { allowed: boolean; rule: string | null; vlan: number | null };
  assert.equal([d.allowed, d.rule, d.vlan], [false, null, null]);
});

test('a socket that cannot be served exits 4: a file in the way (left alone), a missing directory, two systemd sockets', () => {
  const conf = policy('listen.conf', 'allow br0 root\n');
  const state = join(dir, 'state-listen');
  const inTheWay = join(dir, 'in-the-way');
  writeFileSync(inTheWay, 'keep me');
  const file = helper(['--socket', inTheWay, '--config', conf, '--state-dir', state]);
  assert.is(file.status, 4);
  oneLine(file, /exists and is not a socket/);
  assert.is(readFileSync(inTheWay, 'utf8'), 'keep me');

  const nodir = helper(['--socket', join(dir, 'no', 'such', 'dir.sock'), '--config', conf, '--state-dir', state]);
  assert.is(nodir.status, 4);
  oneLine(nodir, /cannot listen on .*dir\.sock/);

  // LISTEN_PID must be the helper's own pid: a shell that execs node keeps its pid.
  const sh = spawnSync('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" "$@"`, process.execPath, HELPER_MAIN, '--config', conf, '--state-dir', state],
    { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' }, timeout: 30_000 });
  assert.is(sh.status, 4);
  oneLine({ status: sh.status, stdout: sh.stdout, stderr: sh.stderr }, /systemd passed 2 sockets/);
});

test('an error that is no CodedError is a bug: 70, "internal error" and its stack, escaped on one line', () => {
  const conf = policy('bug.conf', 'allow br0 root\n');
  const hook = join(dir, 'bug.mjs');
  // Something the helper calls throws a plain Error whose message holds an escape sequence.
  writeFileSync(hook, 'process.umask = () => { throw new Error("boom\\u001b[31m red"); };\n');
  const r = helper(['--socket', join(dir, 'bug.sock'), '--config', conf, '--state-dir', join(dir, 'state-bug')],
    { node: ['--import', pathToFileURL(hook).href] });
  assert.is(r.status, 70);
  oneLine(r, /^xkvm-helper: internal error: Error: boom\\e\[31m red\\n {4}at /);
  assert.not.match(r.stderr, /\u001b/);
});

test.run();
