// Self-test of the namespace and test-user helpers that system tests build on. Needs root.
import { test } from './suite.js';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  TOOLS, createNetns, createTestGroup, createTestUser, listNetns, lookupUser, missingTools, removeTestGroup, removeTestUser,
  sweepStaleNetns, sweepStaleTestUsers, type TestUser,
} from './netns.js';

let user: TestUser | undefined;
let USER = '';

test.before(() => {
  requireRoot();
  user = createTestUser('self');
  USER = user.name;
});

test.after(() => {
  if (user !== undefined) removeTestUser(user);
});

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('these tests need root (network namespaces, runuser, useradd)');
  const missing = missingTools();
  if (missing.length > 0) throw new Error(`missing tools: ${missing.join(', ')}`);
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function deadPid(): number {
  const r = spawnSync('/usr/bin/true');
  if (r.pid === undefined) throw new Error('could not start /usr/bin/true');
  return r.pid;
}

function groupMembers(name: string): string[] | undefined {
  const r = spawnSync(TOOLS.getent, ['group', name], { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.trim().split(':')[3] ?? '').split(',').filter((m) => m !== '') : undefined;
}

test('a test user is new, named after this process, not root, with a home; removing it removes its home and group too', () => {
  const made = createTestUser('gone');
  try {
    assert.is(made.name, `xkvmt${process.pid}-gone`);
    assert.ok(made.uid !== 0);
    assert.is(statSync(made.home).uid, made.uid);
    assert.equal(groupMembers(made.name), []);
    assert.throws(() => createTestUser('gone'), /exists already/);
  } finally {
    removeTestUser(made);
  }
  assert.is(lookupUser(made.name), undefined);
  assert.not.ok(existsSync(made.home), 'the home folder is left');
  assert.is(groupMembers(made.name), undefined, 'the user\'s group is left');
  removeTestUser(made);
});

test('a test group has the members it was made with, and removing it leaves them', () => {
  const group = createTestGroup('grp', [user!]);
  try {
    assert.equal(groupMembers(group.name), [USER]);
  } finally {
    removeTestGroup(group);
  }
  assert.is(groupMembers(group.name), undefined);
  assert.ok(lookupUser(USER) !== undefined);
});

test('sweepStaleTestUsers removes the users and groups of dead test processes and keeps those of live ones', () => {
  const stale = `xkvmt${deadPid()}-stale`;
  const live = `xkvmt${process.ppid}-live`;
  const add = (name: string): void => {
    const r = spawnSync('/usr/sbin/useradd', ['--user-group', '--shell', '/usr/sbin/nologin', '--comment', 'xkvm test user', name], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
  };
  add(stale);
  add(live);
  try {
    const removed = sweepStaleTestUsers();
    assert.ok(removed.includes(stale), `${stale} was not swept: ${removed.join(' ')}`);
    assert.is(lookupUser(stale), undefined);
    assert.is(groupMembers(stale), undefined, 'the stale user\'s group is left');
    assert.ok(lookupUser(live) !== undefined, 'the user of a live process was swept');
    assert.ok(lookupUser(USER) !== undefined, 'our own user was swept');
  } finally {
    for (const name of [stale, live]) spawnSync('/usr/sbin/userdel', [name]);
  }
});

test('a command with openTun gets a /dev/net/tun of its own that the user may open, and the host\'s device is left as it was', () => {
  const host = statSync('/dev/net/tun');
  const ns = createNetns();
  try {
    const probe = "const fs = require('node:fs'); fs.closeSync(fs.openSync('/dev/net/tun', 'r+')); const s = fs.statSync('/dev/net/tun'); console.log(s.ino, s.rdev, (s.mode & 0o777).toString(8));";
    const r = ns.exec([process.execPath, '-e', probe], { user: USER, openTun: true });
    assert.is(r.status, 0, r.stderr);
    const [ino, rdev, mode] = r.stdout.trim().split(' ');
    assert.is.not(Number(ino), host.ino, 'the command saw the host\'s node');
    assert.is(Number(rdev), host.rdev);
    assert.is(mode, '666');
    const plain = ns.exec(['/usr/bin/stat', '-c', '%i', '/dev/net/tun'], { user: USER });
    assert.is(Number(plain.stdout.trim()), host.ino, 'without openTun the command sees the host\'s node');
  } finally {
    ns.destroy();
  }
  const after = statSync('/dev/net/tun');
  assert.equal([after.ino, after.mode, after.uid, after.gid], [host.ino, host.mode, host.uid, host.gid]);
});

test('a command in the namespace sees only lo and the requested bridges in /sys/class/net', () => {
  requireRoot();
  const ns = createNetns({ bridges: ['br0', 'br1'] });
  try {
    const r = ns.exec(['/usr/bin/ls', '/sys/class/net']);
    assert.is(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter((l) => l !== '').sort(), ['br0', 'br1', 'lo']);
    assert.ok(existsSync(`/sys/class/net/lo`));
    for (const dev of ['lo', 'br0', 'br1']) assert.match(ns.ip('link', 'show', dev), /<[^>]*\bUP\b[^>]*>/, `${dev} is down`);
  } finally {
    ns.destroy();
  }
});

test('a command run as the user is unprivileged and gets only the listed environment', () => {
  requireRoot();
  const ns = createNetns();
  try {
    const id = ns.exec(['/usr/bin/id', '-u'], { user: USER });
    assert.is(id.stdout.trim(), String(user!.uid));
    const env = ns.exec(['/usr/bin/env'], { user: USER, env: { EXTRA: 'a b', LANG: 'C.UTF-8' } });
    const vars = Object.fromEntries(env.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.equal(vars, {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: user!.home,
      USER,
      LOGNAME: USER,
      LANG: 'C.UTF-8',
      EXTRA: 'a b',
    });
    const tun = ns.exec(['/usr/sbin/ip', 'link', 'add', 'brx', 'type', 'bridge'], { user: USER });
    assert.ok(tun.status !== 0, 'an ordinary user could create a bridge');
  } finally {
    ns.destroy();
  }
});

test('stdin is /dev/null unless input is given, and cwd is honoured', () => {
  requireRoot();
  const dir = mkdtempSync(join(tmpdir(), 'xkvmt-cwd-'));
  chmodSync(dir, 0o755);
  const ns = createNetns();
  try {
    assert.is(ns.exec(['/usr/bin/cat'], { user: USER }).stdout, '');
    assert.is(ns.exec(['/usr/bin/readlink', '/proc/self/fd/0']).stdout.trim(), '/dev/null');
    assert.is(ns.exec(['/usr/bin/cat'], { user: USER, input: 'hello\n' }).stdout, 'hello\n');
    assert.is(ns.exec(['/usr/bin/pwd'], { user: USER, cwd: dir }).stdout.trim(), dir);
  } finally {
    ns.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a command that outlives its timeout is reported, and destroy removes the namespace and what ran in it', () => {
  requireRoot();
  const ns = createNetns({ bridges: ['br0'] });
  const r = ns.exec(['/usr/bin/sleep', '30'], { user: USER, timeoutMs: 300 });
  assert.ok(r.timedOut);
  assert.is(r.status, null);
  const inside = spawnSync(TOOLS.ip, ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout.split(/\s+/).filter((p) => p !== '');
  ns.destroy();
  ns.destroy();
  assert.not.ok(listNetns().includes(ns.name));
  // killed is enough: an orphan stays a zombie until PID 1 reaps it, which some containers never do
  for (const pid of inside) assert.not.ok(alive(Number(pid)), `process ${pid} survived destroy()`);
});

test('bad bridge names and commands are refused before anything runs', () => {
  requireRoot();
  const before = listNetns();
  assert.throws(() => createNetns({ bridges: ['-br0'] }), /bad bridge name/);
  assert.throws(() => createNetns({ bridges: ['a-name-longer-than-15'] }), /bad bridge name/);
  assert.equal(listNetns(), before);
  const ns = createNetns();
  try {
    assert.throws(() => ns.exec(['-x']), /bad command/);
    assert.throws(() => ns.exec(['A=B']), /bad command/);
    assert.throws(() => ns.exec(['/usr/bin/true'], { user: 'no such user' }), /bad user name/);
  } finally {
    ns.destroy();
  }
});

test('sweepStaleNetns removes namespaces of dead owners and keeps those of live processes', () => {
  requireRoot();
  const stale = `xkvmt-${deadPid()}-stale`;
  const alive = `xkvmt-${process.ppid}-alive`;
  for (const n of [stale, alive]) spawnSync(TOOLS.ip, ['netns', 'add', n]);
  const mine = createNetns();
  try {
    const removed = sweepStaleNetns();
    assert.ok(removed.includes(stale), `${stale} was not swept`);
    const now = listNetns();
    assert.not.ok(now.includes(stale));
    assert.ok(now.includes(alive), 'the namespace of a live process was swept');
    assert.ok(now.includes(mine.name), 'our own namespace was swept');
  } finally {
    mine.destroy();
    spawnSync(TOOLS.ip, ['netns', 'delete', alive]);
    spawnSync(TOOLS.ip, ['netns', 'delete', stale]);
  }
});

test('a process killed with SIGTERM leaves no namespace and no test user behind', async () => {
  requireRoot();
  const module = fileURLToPath(new URL('./netns.js', import.meta.url));
  const child = spawn(process.execPath, ['--input-type=module', '-e',
    `import { createNetns, createTestUser } from ${JSON.stringify(module)};
     const ns = createNetns({ bridges: ['br0'] });
     const user = createTestUser('term');
     process.stdout.write(ns.name + ' ' + user.name + '\\n');
     setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += String(d);
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  const [name = '', userName = ''] = line.split(' ');
  assert.ok(listNetns().includes(name));
  assert.ok(lookupUser(userName) !== undefined);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
  child.kill('SIGTERM');
  assert.is(await exited, 'SIGTERM');
  assert.not.ok(listNetns().includes(name), `${name} survived its owner's SIGTERM`);
  assert.is(lookupUser(userName), undefined, `${userName} survived its owner's SIGTERM`);
});

test.run();
