// Network namespaces and ordinary users for system tests (root only).
//
//   const user = createTestUser('a');
//   const ns = createNetns({ bridges: ['br0'] });
//   try {
//     const r = ns.exec(['/usr/bin/id', '-u'], { user: user.name });
//   } finally {
//     ns.destroy();
//     removeTestUser(user);
//   }
//
// Commands run as `ip netns exec NS [runuser -u USER --] env -i K=V... argv...`: never through a
// shell, with absolute tool paths, with a cleared environment (PATH, HOME, USER, LOGNAME, LANG=C,
// plus what the caller adds). `ip netns exec` remounts /sys, so /sys/class/net shows the
// namespace's interfaces. runuser -u runs the command directly as the user (no login shell,
// no privilege kept).
//
// Namespace names are `xkvmt-<pid>-<random>`: sweepStaleNetns() removes those whose creating
// process is gone, so tests running at the same time never remove each other's namespaces.
// Namespaces still open when the process exits (or gets SIGINT/SIGTERM/SIGHUP) are removed
// by an exit hook; destroy() in a `finally` is still the normal way.
//
// Test users and groups are made the same way: `xkvmt<pid>-<tag>`, one set per test process, so
// no two runs share a user and a suite can remove its users when it is done (removeTestUser in
// `after`; the exit hook removes what is left, and createTestUser first removes the users and
// groups of test processes that are gone).
//
// `openTun: true` gives a command a /dev/net/tun that any user may open (what ordinary users
// running qemu need, as most distributions ship it) without touching the host's device: a 0666
// node of this process is bound over /dev/net/tun inside the command's own mount namespace,
// which `ip netns exec` makes for every command and keeps from propagating back.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunning, procUid } from './procs.js';

export const TOOLS = {
  ip: '/usr/sbin/ip',
  runuser: '/usr/sbin/runuser',
  useradd: '/usr/sbin/useradd',
  userdel: '/usr/sbin/userdel',
  groupadd: '/usr/sbin/groupadd',
  groupdel: '/usr/sbin/groupdel',
  getent: '/usr/bin/getent',
  env: '/usr/bin/env',
  sh: '/bin/sh',
  mount: '/usr/bin/mount',
  mknod: '/usr/bin/mknod',
} as const;

export const NETNS_PREFIX = 'xkvmt-';
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const USER_NAME = /^[a-z_][a-z0-9_-]{0,30}$/;
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface ExecOptions {
  /** run as this user (via runuser -u); root when absent */
  readonly user?: string;
  /** a /dev/net/tun anyone may open, for this command only (see the top of this file) */
  readonly openTun?: boolean;
  readonly cwd?: string;
  /** added to (and overriding) PATH, HOME, USER, LOGNAME and LANG=C */
  readonly env?: Readonly<Record<string, string>>;
  /** stdin; /dev/null when absent */
  readonly input?: string | Buffer;
  /** SIGKILL after this long (default 60 s); the namespace's leftovers die at destroy() */
  readonly timeoutMs?: number;
}

export interface ExecResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface SpawnInOptions {
  readonly user?: string;
  /** a /dev/net/tun anyone may open, for this command only (see the top of this file) */
  readonly openTun?: boolean;
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly stdio?: StdioOptions;
}

export interface Netns {
  readonly name: string;
  readonly bridges: readonly string[];
  /** The full argv (starting with /usr/sbin/ip) that exec/spawn run for argv. */
  command(argv: readonly string[], opts?: SpawnInOptions): string[];
  exec(argv: readonly string[], opts?: ExecOptions): ExecResult;
  /** Same as exec, for long-running processes; the caller owns the child. */
  spawn(argv: readonly string[], opts?: SpawnInOptions): ChildProcess;
  /** `ip -n NAME args...` as root; throws with ip's stderr on failure; returns stdout. */
  ip(...args: string[]): string;
  /** Kills what still runs inside and deletes the namespace (and so its interfaces). Idempotent. */
  destroy(): void;
}

/** Names of the tools these helpers need that are missing here (empty when all are present). */
export function missingTools(): string[] {
  return Object.values(TOOLS).filter((path) => !existsSync(path));
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root (network namespaces, runuser, useradd)`);
  const missing = missingTools();
  if (missing.length > 0) throw new Error(`${what}: missing ${missing.join(', ')}`);
}

function run(file: string, args: readonly string[], timeoutMs = 30_000): ExecResult {
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 64 << 20,
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  if (r.error && !timedOut) throw new Error(`cannot run ${file}: ${r.error.message}`);
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut };
}

function mustRun(file: string, args: readonly string[]): string {
  const r = run(file, args);
  if (r.status !== 0) {
    throw new Error(`${[file, ...args].join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** The passwd entry of name, or undefined when there is none. */
export function lookupUser(name: string): TestUser | undefined {
  if (!USER_NAME.test(name)) throw new Error(`bad user name ${JSON.stringify(name)}`);
  const r = run(TOOLS.getent, ['passwd', name]);
  if (r.status === 2) return undefined;
  if (r.status !== 0) throw new Error(`getent passwd ${name} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  const fields = r.stdout.trim().split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  const home = fields[5];
  if (fields.length < 7 || !Number.isInteger(uid) || !Number.isInteger(gid) || home === undefined || home === '') {
    throw new Error(`unexpected passwd entry for ${name}: ${r.stdout.trim()}`);
  }
  return { name, uid, gid, home };
}

const TEST_USER_COMMENT = 'xkvm test user';
const TEST_NAME = /^xkvmt(\d+)-/;
const liveUsers = new Set<string>();
const liveGroups = new Set<string>();

function testName(tag: string): string {
  const name = `xkvmt${process.pid}-${tag}`;
  if (!/^[a-z0-9]{1,12}$/.test(tag) || !USER_NAME.test(name)) throw new Error(`bad test user or group tag ${JSON.stringify(tag)}`);
  return name;
}

function exists(database: 'passwd' | 'group', name: string): boolean {
  const r = run(TOOLS.getent, [database, name]);
  if (r.status !== 0 && r.status !== 2) throw new Error(`getent ${database} ${name} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.status === 0;
}

/** userdel's status when the user still has processes. */
const USER_BUSY = 8;

/** The pids whose real uid is `uid`. */
function processesOf(uid: number): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => procUid(pid) === uid);
}

function uidOf(name: string): number | undefined {
  const line = run(TOOLS.getent, ['passwd', name]).stdout.trim();
  const uid = Number(line.split(':')[2] ?? NaN);
  return Number.isInteger(uid) ? uid : undefined;
}

function deleteUser(name: string): void {
  // --remove: the home folder and mail spool go too; the user's own group goes with the user
  let r = run(TOOLS.userdel, ['--remove', name]);
  const uid = r.status === USER_BUSY ? uidOf(name) : undefined;
  if (uid !== undefined && uid > 0) {
    // What a test left running as the user (a qemu whose client was SIGKILLed ends on its own a
    // moment later): killed, and waited for. A zombie whose parent is gone stays where PID 1 does
    // not reap (a container's init): it holds nothing, so the user is removed with --force then.
    const deadline = Date.now() + 5000;
    for (;;) {
      const running = processesOf(uid).filter(isRunning);
      if (running.length === 0 || Date.now() > deadline) break;
      for (const pid of running) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      spawnSync('/bin/sleep', ['0.05']);
    }
    r = run(TOOLS.userdel, ['--remove', name]);
    if (r.status === USER_BUSY && processesOf(uid).every((pid) => !isRunning(pid))) r = run(TOOLS.userdel, ['--remove', '--force', name]);
  }
  if (r.status !== 0 && exists('passwd', name)) {
    throw new Error(`userdel ${name} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  }
}

function deleteGroup(name: string): void {
  const r = run(TOOLS.groupdel, [name]);
  if (r.status !== 0 && exists('group', name)) throw new Error(`groupdel ${name} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
}

/**
 * Removes the test users and groups (`xkvmt<pid>-*`) whose test process is gone. Returns their
 * names. Users still running processes are left (userdel refuses them) for a later sweep.
 */
export function sweepStaleTestUsers(): string[] {
  requireRoot('sweepStaleTestUsers');
  const stale = (name: string): boolean => {
    const pid = Number(TEST_NAME.exec(name)?.[1] ?? NaN);
    return Number.isInteger(pid) && pid !== process.pid && !isRunning(pid);
  };
  const removed: string[] = [];
  for (const line of mustRun(TOOLS.getent, ['passwd']).split('\n')) {
    const [name = '', , , , comment] = line.split(':');
    if (!stale(name) || comment !== TEST_USER_COMMENT) continue;
    if (run(TOOLS.userdel, ['--remove', name]).status === 0) removed.push(name);
  }
  for (const line of mustRun(TOOLS.getent, ['group']).split('\n')) {
    const name = line.split(':')[0] ?? '';
    if (stale(name) && run(TOOLS.groupdel, [name]).status === 0) removed.push(name);
  }
  return removed;
}

/**
 * A new ordinary user `xkvmt<pid>-<tag>` (tag: 1-12 of [a-z0-9]) with its own group and a home
 * folder, login shell /usr/sbin/nologin, belonging to this test process: removeTestUser removes
 * it (the exit hook does, at the latest).
 */
export function createTestUser(tag: string): TestUser {
  requireRoot('createTestUser');
  const name = testName(tag);
  if (liveUsers.has(name)) throw new Error(`test user ${name} exists already: use another tag`);
  sweepStaleTestUsers();
  // the same name from an earlier process with this pid: a leftover
  if (exists('passwd', name)) deleteUser(name);
  installHooks();
  mustRun(TOOLS.useradd, ['--create-home', '--user-group', '--shell', '/usr/sbin/nologin', '--comment', TEST_USER_COMMENT, name]);
  liveUsers.add(name);
  const user = lookupUser(name);
  if (user === undefined) throw new Error(`user ${name} is missing after useradd`);
  if (user.uid === 0) throw new Error(`test user ${name} is root`);
  return user;
}

/** Removes a user made by createTestUser, with its home folder and group. Idempotent. */
export function removeTestUser(user: TestUser): void {
  liveUsers.delete(user.name);
  deleteUser(user.name);
}

export interface TestGroup {
  readonly name: string;
}

/** A new (system) group `xkvmt<pid>-<tag>` with `members` in it; removeTestGroup removes it. */
export function createTestGroup(tag: string, members: readonly TestUser[]): TestGroup {
  requireRoot('createTestGroup');
  const name = testName(tag);
  if (liveGroups.has(name)) throw new Error(`test group ${name} exists already: use another tag`);
  if (exists('group', name)) deleteGroup(name);
  installHooks();
  mustRun(TOOLS.groupadd, ['--system', ...(members.length > 0 ? ['--users', members.map((m) => m.name).join(',')] : []), name]);
  liveGroups.add(name);
  return { name };
}

/** Removes a group made by createTestGroup. Idempotent. */
export function removeTestGroup(group: TestGroup): void {
  liveGroups.delete(group.name);
  deleteGroup(group.name);
}

function commandEnv(user: string | undefined, extra: Readonly<Record<string, string>> | undefined): string[] {
  const who = user === undefined ? { name: 'root', home: '/root' } : lookupUser(user);
  if (who === undefined) throw new Error(`no such user ${user ?? ''}`);
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOME: who.home,
    USER: who.name,
    LOGNAME: who.name,
    LANG: 'C',
    ...extra,
  };
  return Object.entries(env).map(([k, v]) => {
    if (!ENV_NAME.test(k) || v.includes('\0')) throw new Error(`bad environment entry ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
}

function buildCommand(ns: string, argv: readonly string[], opts: SpawnInOptions): string[] {
  const first = argv[0];
  // env(1) would read a leading '-' as its own option and a '=' as another assignment
  if (first === undefined || first.startsWith('-') || first.includes('=')) {
    throw new Error(`bad command ${JSON.stringify(argv)}`);
  }
  if (opts.user !== undefined && !USER_NAME.test(opts.user)) throw new Error(`bad user name ${JSON.stringify(opts.user)}`);
  const asUser = opts.user === undefined ? [] : [TOOLS.runuser, '-u', opts.user, '--'];
  // a fixed script: the node and the command are its arguments, never part of its text
  const tun = opts.openTun === true ? [TOOLS.sh, '-c', `${TOOLS.mount} --bind -- "$1" /dev/net/tun && shift && exec "$@"`, 'sh', openTunNode()] : [];
  return [TOOLS.ip, 'netns', 'exec', ns, ...tun, ...asUser, TOOLS.env, '-i', ...commandEnv(opts.user, opts.env), ...argv];
}

let tunDir: string | undefined;

/** This process's 0666 tun node (made once, in a folder only root can enter; gone at exit). */
function openTunNode(): string {
  if (tunDir === undefined) {
    installHooks();
    tunDir = mkdtempSync(join(tmpdir(), `xkvmt-tun-${process.pid}-`));
    chmodSync(tunDir, 0o700);
    const { rdev } = statSync('/dev/net/tun');
    // major and minor of the real device (10, 200 on Linux)
    mustRun(TOOLS.mknod, ['--mode=0666', join(tunDir, 'tun'), 'c', String((rdev >> 8) & 0xfff), String((rdev & 0xff) | ((rdev >> 12) & 0xfff00))]);
  }
  return join(tunDir, 'tun');
}

// --- bookkeeping for clean-up ----------------------------------------------------------------

const live = new Set<string>();
let hooksInstalled = false;

function deleteNetns(name: string): void {
  const pids = run(TOOLS.ip, ['netns', 'pids', name]);
  if (pids.status === 0) {
    for (const word of pids.stdout.split(/\s+/)) {
      const pid = Number(word);
      if (word === '' || !Number.isInteger(pid) || pid <= 1) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  const r = run(TOOLS.ip, ['netns', 'delete', name]);
  if (r.status !== 0 && !/No such file|not found/i.test(r.stderr)) {
    throw new Error(`ip netns delete ${name} failed: ${r.stderr.trim()}`);
  }
}

function destroyAllLive(): void {
  const bestEffort = (fn: () => void): void => {
    try {
      fn();
    } catch {
      // best effort at exit
    }
  };
  // namespaces first: that ends the processes running in them (and so as the test users)
  for (const name of [...live]) {
    live.delete(name);
    bestEffort(() => deleteNetns(name));
  }
  for (const name of [...liveUsers]) {
    liveUsers.delete(name);
    bestEffort(() => deleteUser(name));
  }
  for (const name of [...liveGroups]) {
    liveGroups.delete(name);
    bestEffort(() => deleteGroup(name));
  }
  if (tunDir !== undefined) rmSync(tunDir, { recursive: true, force: true });
  tunDir = undefined;
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', destroyAllLive);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      destroyAllLive();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Names of the existing network namespaces. */
export function listNetns(): string[] {
  const out = mustRun(TOOLS.ip, ['netns', 'list']);
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '');
}

/**
 * Deletes leftover `xkvmt-*` namespaces: those whose owner process (the pid in the name) is gone,
 * and any not following the `xkvmt-<pid>-` pattern. Returns the names it deleted.
 */
export function sweepStaleNetns(): string[] {
  requireRoot('sweepStaleNetns');
  const removed: string[] = [];
  for (const name of listNetns()) {
    if (!name.startsWith(NETNS_PREFIX) || live.has(name)) continue;
    const m = /^xkvmt-(\d+)-/.exec(name);
    const owner = m?.[1] === undefined ? NaN : Number(m[1]);
    if (Number.isInteger(owner) && owner !== process.pid && isRunning(owner)) continue;
    deleteNetns(name);
    removed.push(name);
  }
  return removed;
}

export interface CreateNetnsOptions {
  /** Linux bridges to create (and bring up) inside the namespace */
  readonly bridges?: readonly string[];
}

export function createNetns(opts: CreateNetnsOptions = {}): Netns {
  requireRoot('createNetns');
  const bridges = [...(opts.bridges ?? [])];
  for (const br of bridges) {
    if (!IFNAME.test(br)) throw new Error(`bad bridge name ${JSON.stringify(br)}`);
  }
  installHooks();
  const name = `${NETNS_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
  mustRun(TOOLS.ip, ['netns', 'add', name]);
  live.add(name);
  let destroyed = false;

  const handle: Netns = {
    name,
    bridges,
    command: (argv, o = {}) => buildCommand(name, argv, o),
    exec(argv, o = {}) {
      const full = buildCommand(name, argv, o);
      const r = spawnSync(full[0] ?? TOOLS.ip, full.slice(1), {
        ...(o.cwd === undefined ? {} : { cwd: o.cwd }),
        ...(o.input === undefined ? {} : { input: o.input }),
        stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        encoding: 'utf8',
        timeout: o.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 << 20,
      });
      const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
      if (r.error && !timedOut) throw new Error(`cannot run ${full.join(' ')}: ${r.error.message}`);
      return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut };
    },
    spawn(argv, o = {}) {
      const full = buildCommand(name, argv, o);
      return spawn(full[0] ?? TOOLS.ip, full.slice(1), {
        ...(o.cwd === undefined ? {} : { cwd: o.cwd }),
        stdio: o.stdio ?? ['ignore', 'pipe', 'pipe'],
      });
    },
    ip: (...args) => mustRun(TOOLS.ip, ['-n', name, ...args]),
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(name);
      deleteNetns(name);
    },
  };

  try {
    handle.ip('link', 'set', 'lo', 'up');
    for (const br of bridges) {
      handle.ip('link', 'add', br, 'type', 'bridge');
      handle.ip('link', 'set', br, 'up');
    }
  } catch (e) {
    handle.destroy();
    throw e;
  }
  return handle;
}
