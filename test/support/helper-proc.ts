/**
 * The real helper (dist/helper/src/main.js) and real clients as processes inside a test network
 * namespace (root only):
 *
 *   const scratch = makeScratch('lc');                      // root-owned 0755 folder under /tmp
 *   const config = scratch.policy(['allow br0 alice']);       // root-owned 0644 helper.conf
 *   const helper = await startSocketHelper(ns, { config, stateDir: scratch.state, socket: scratch.socket });
 *   const alice = startHolder(ns, 'alice', { socket: scratch.socket, bridges: ['br0'] });
 *   const result = await alice.result(10_000);
 *   ...
 *   await stop(helper); scratch.remove();
 *
 * Every process is watched (`Watched`): its stdout lines, the helper's audit records (stderr lines
 * `xkvm-helper: audit {...}`), and its exit, all awaitable with deadlines.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HelperConnection } from '../../client/src/helper/connection.js';
import type { Netns } from './netns.js';
import type { HoldEvent, HoldSpec } from './hold-session.js';
import { descendants, signal } from './procs.js';
import { waitFor, within } from './wait.js';

export const HELPER_MAIN = fileURLToPath(new URL('../../helper/src/main.js', import.meta.url));
/** The client as package.json's bin runs it. */
const XKVM_BIN = fileURLToPath(new URL('../../bin/xkvm.cjs', import.meta.url));
const HOLD_SESSION = fileURLToPath(new URL('./hold-session.js', import.meta.url));
const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';

interface AuditEntry {
  readonly event: string;
  readonly [key: string]: unknown;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Watched {
  readonly child: ChildProcess;
  /** The pid of what was spawned (ip netns exec execs, so without runuser it is the program's). */
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  readonly audits: AuditEntry[];
  /** Set once the process has exited. */
  exit(): Exit | undefined;
  readonly exited: Promise<Exit>;
  /** Resolves with the first audit record (already seen or to come) that satisfies pred. */
  audit(pred: (a: AuditEntry) => boolean, deadlineMs: number, what?: string): Promise<AuditEntry>;
  /** Resolves with the first stdout line (already seen or to come) that satisfies pred. */
  line(pred: (line: string) => boolean, deadlineMs: number, what?: string): Promise<string>;
  kill(sig?: NodeJS.Signals): void;
}

const AUDIT_PREFIX = 'xkvm-helper: audit ';

/** Watch a child; with `binaryStdout`, stdout is left alone (e.g. for a HelperConnection). */
export function watch(child: ChildProcess, options: { binaryStdout?: boolean } = {}): Watched {
  if (child.pid === undefined) throw new Error('the process did not start');
  let out = '';
  let err = '';
  const lines: string[] = [];
  const audits: AuditEntry[] = [];
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  let partialOut = '';
  let partialErr = '';
  if (options.binaryStdout !== true) child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    partialOut += chunk;
    const parts = partialOut.split('\n');
    partialOut = parts.pop() ?? '';
    lines.push(...parts);
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    partialErr += chunk;
    const parts = partialErr.split('\n');
    partialErr = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.startsWith(AUDIT_PREFIX)) continue;
      try {
        audits.push(JSON.parse(line.slice(AUDIT_PREFIX.length)) as AuditEntry);
      } catch {
        audits.push({ event: 'unparsable', line });
      }
    }
    notify();
  });
  let exitInfo: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, sig) => {
      exitInfo = { code, signal: sig };
      notify();
      resolve(exitInfo);
    });
  });
  const wait = <T>(find: () => T | undefined, deadlineMs: number, what: string): Promise<T> => new Promise((resolve, reject) => {
    const check = (): void => {
      const found = find();
      if (found !== undefined) {
        listeners.delete(check);
        clearTimeout(timer);
        resolve(found);
      } else if (exitInfo !== undefined) {
        listeners.delete(check);
        clearTimeout(timer);
        reject(new Error(`${what}: the process exited (${exitInfo.code ?? exitInfo.signal}) first; stdout: ${out.slice(-800)} stderr: ${err.slice(-1500)}`));
      }
    };
    const timer = setTimeout(() => {
      listeners.delete(check);
      reject(new Error(`timed out after ${deadlineMs} ms waiting for ${what}; stdout: ${out.slice(-800)} stderr: ${err.slice(-1500)}`));
    }, deadlineMs);
    listeners.add(check);
    check();
  });
  return {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    audits,
    exit: () => exitInfo,
    exited,
    audit: (pred, deadlineMs, what = 'an audit record') => wait(() => audits.find(pred), deadlineMs, what),
    line: (pred, deadlineMs, what = 'a line on stdout') => wait(() => lines.find(pred), deadlineMs, what),
    kill: (sig = 'SIGKILL') => {
      if (exitInfo === undefined && child.pid !== undefined) signal(child.pid, sig);
    },
  };
}

/**
 * SIGKILL the process and everything below it (runuser forks: the program is its child, and a
 * child still holding the pipes would keep 'close' from ever coming), then wait for the exit.
 * Never throws: it runs in `finally` blocks, where it must not hide the test's own failure.
 */
export async function stop(w: Watched, deadlineMs = 5000): Promise<Exit | undefined> {
  if (w.exit() !== undefined) return w.exit();
  for (const p of descendants(w.pid).reverse()) signal(p.pid, 'SIGKILL');
  w.kill('SIGKILL');
  try {
    return await within(w.exited, deadlineMs, `pid ${w.pid} to exit after SIGKILL`);
  } catch (error) {
    process.stderr.write(`warning: ${(error as Error).message}\n`);
    return undefined;
  }
}

// --- scratch folders and policies ---------------------------------------------------------------

export interface Scratch {
  readonly dir: string;
  /** Session records (the helper creates the folder). */
  readonly state: string;
  /** Where a socket helper listens. */
  readonly socket: string;
  /** Write a root-owned 0644 policy file (named `name`, default helper.conf) with these lines. */
  policy(lines: readonly string[], name?: string): string;
  /** The session record files now in the state folder. */
  records(): string[];
  remove(): void;
}

/**
 * A fresh root-owned 0755 folder under /tmp (sticky, so the policy's directory chain is safe):
 * short, because a Unix socket path holds at most 107 bytes.
 */
export function makeScratch(tag: string): Scratch {
  const dir = mkdtempSync(`/tmp/xkvm${tag}-`);
  chmodSync(dir, 0o755);
  const state = join(dir, 'sessions');
  return {
    dir,
    state,
    socket: join(dir, 'h.sock'),
    policy(lines, name = 'helper.conf') {
      const path = join(dir, name);
      writeFileSync(path, `${lines.join('\n')}\n`, { mode: 0o644 });
      chmodSync(path, 0o644);
      return path;
    },
    records: () => (existsSync(state) ? readdirSync(state).filter((n) => n.endsWith('.json')) : []),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// --- helpers ------------------------------------------------------------------------------------

export interface HelperPaths {
  readonly config: string;
  readonly stateDir: string;
  readonly socket: string;
}

/** `xkvm-helper --config C --state-dir D --socket S` as root in the namespace; resolves once it serves. */
export async function startSocketHelper(ns: Netns, p: HelperPaths, deadlineMs = 15_000): Promise<Watched> {
  const helper = watch(ns.spawn([process.execPath, HELPER_MAIN, '--config', p.config, '--state-dir', p.stateDir, '--socket', p.socket],
    { stdio: ['ignore', 'pipe', 'pipe'] }));
  await helper.audit((a) => a.event === 'helper-start', deadlineMs, 'the helper to start serving');
  return helper;
}

/**
 * `systemd-socket-activate -l S node main.js --config C --state-dir D --idle-timeout N [ARGS]` as root in
 * the namespace. Resolves once the socket exists (made connectable by everyone, as the installed
 * unit's SocketMode=0666 would); the helper itself starts at the first connection.
 */
export async function startActivatedHelper(ns: Netns, p: HelperPaths & { idleSeconds: number; args?: readonly string[] }): Promise<Watched> {
  const helper = watch(ns.spawn([SOCKET_ACTIVATE, '-l', p.socket, process.execPath, HELPER_MAIN, '--config', p.config,
    '--state-dir', p.stateDir, '--idle-timeout', String(p.idleSeconds), ...p.args ?? []], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await waitFor(() => existsSync(p.socket) || helper.exit(), 10_000, { what: `systemd-socket-activate to listen on ${p.socket}` });
  if (helper.exit() !== undefined) throw new Error(`systemd-socket-activate exited: ${helper.stderr()}`);
  chmodSync(p.socket, 0o666);
  return helper;
}

export interface StdioHelper extends Watched {
  readonly connection: HelperConnection;
}

/**
 * `xkvm-helper --stdio --config C --state-dir D` run directly as root in the namespace (so it
 * serves root, its parent: this process), spoken to with the client's own HelperConnection.
 */
export function startStdioHelper(ns: Netns, p: Omit<HelperPaths, 'socket'>): StdioHelper {
  const child = ns.spawn([process.execPath, HELPER_MAIN, '--stdio', '--config', p.config, '--state-dir', p.stateDir],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  const w = watch(child, { binaryStdout: true });
  const connection = new HelperConnection(child.stdout!, child.stdin!, () => child.stdin?.end(), `stdio helper ${w.pid}`);
  return { ...w, connection };
}

// --- clients ------------------------------------------------------------------------------------

export interface Holder extends Watched {
  /** The client process's pid (the node process, not runuser). */
  ready(deadlineMs: number): Promise<number>;
  go(): void;
  result(deadlineMs: number): Promise<Extract<HoldEvent, { event: 'result' }>>;
  /** End stdin: the client closes its connections and exits. */
  release(): void;
}

/** hold-session as `user` in the namespace (see hold-session.ts). */
export function startHolder(ns: Netns, user: string, spec: Partial<HoldSpec> & { socket: string; bridges: readonly string[] }): Holder {
  const full: HoldSpec = { connections: 1, lifetime: 'session', waitGo: false, ...spec };
  const w = watch(ns.spawn([process.execPath, HOLD_SESSION, JSON.stringify(full)], { user, cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] }));
  const event = async <E extends HoldEvent['event']>(name: E, deadlineMs: number): Promise<Extract<HoldEvent, { event: E }>> => {
    const line = await w.line((l) => {
      try {
        const e = JSON.parse(l) as HoldEvent;
        return e.event === name || e.event === 'error';
      } catch {
        return false;
      }
    }, deadlineMs, `hold-session (${user}) to say ${name}`);
    const e = JSON.parse(line) as HoldEvent;
    if (e.event === 'error') throw new Error(`hold-session (${user}) failed: ${e.message}`);
    return e as Extract<HoldEvent, { event: E }>;
  };
  return {
    ...w,
    ready: async (deadlineMs) => (await event('ready', deadlineMs)).pid,
    go: () => {
      w.child.stdin?.write('go\n');
    },
    result: (deadlineMs) => event('result', deadlineMs),
    release: () => {
      w.child.stdin?.end();
    },
  };
}

/**
 * The client (`node dist/bin/xkvm.js ARGS`) as `user` in the namespace, with extra environment,
 * and a /dev/net/tun the user may open for the qemu it runs (netns.ts's openTun).
 */
export function startXkvm(ns: Netns, user: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Watched {
  return watch(ns.spawn([process.execPath, XKVM_BIN, ...args], { user, env, openTun: true, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Run the client to completion (deadline: SIGKILL and fail). */
export async function runXkvm(ns: Netns, user: string, args: readonly string[], env: Readonly<Record<string, string>> = {},
  deadlineMs = 30_000): Promise<Exit & { stdout: string; stderr: string }> {
  const w = startXkvm(ns, user, args, env);
  const exit = await within(w.exited, deadlineMs, `xkvm ${args.join(' ')}`).catch((error: unknown) => {
    w.kill('SIGKILL');
    throw new Error(`${(error as Error).message}; stdout so far: ${JSON.stringify(w.stdout())}; stderr: ${JSON.stringify(w.stderr())}`);
  });
  return { ...exit, stdout: w.stdout(), stderr: w.stderr() };
}
