// A real xkvm-helper (dist/helper/src/main.js) serving `--socket PATH` inside a network namespace,
// for system tests (root only):
//
//   const ns = createNetns({ bridges: ['br0'] });
//   const helper = await startHelper(ns, { policy: 'allow br0 root\n' });
//   try {
//     ... connect to helper.socket ...
//     helper.auditSince(mark)            // the `xkvm-helper: audit {json}` records, parsed
//   } finally {
//     await helper.stop();
//     ns.destroy();
//   }
//
// It runs as `ip netns exec NS env -i PATH=... node main.js --socket S --config C --state-dir D`
// (optionally under strace), so the taps it makes live in NS and /sys/class/net is NS's. Its files
// live in a fresh directory under /tmp: `mkdtemp` makes it root-owned and not writable by group
// or others (the policy's safety check wants that for every directory above the policy; /tmp is
// sticky), then it is opened to everyone for search (mode 0755) so ordinary users reach the socket.
// The policy is written root-owned, mode 0644, and replaced atomically by setPolicy (the helper
// re-reads it on the next request). startHelper resolves once the helper wrote its `helper-start`
// audit record, i.e. listens and has swept the state directory. Everything it writes to stderr is
// kept: audit records parsed, other lines as they are.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';
import { isRunning } from './procs.js';

/** The helper's entry point as package.json's `bin` names it, compiled. */
export const HELPER_MAIN = fileURLToPath(new URL('../../helper/src/main.js', import.meta.url));
export const STRACE = '/usr/bin/strace';

const AUDIT_PREFIX = 'xkvm-helper: audit ';

/** One audit record as the helper wrote it (JSON after `xkvm-helper: audit `). */
export interface AuditEntry {
  readonly time: string;
  /** The helper's pid. */
  readonly helper: number;
  readonly event: string;
  readonly [key: string]: unknown;
}

export interface HelperOptions {
  /** The policy text; a function gets the helper's directory (for `audit-log` paths and such). */
  readonly policy: string | ((dir: string) => string);
  /** Added to the helper's environment (which is otherwise PATH, HOME, USER, LOGNAME, LANG=C). */
  readonly env?: Readonly<Record<string, string>>;
  /** Run the helper under `strace -f -v -s 512 -ttt -e trace=execve -o FILE` (absolute FILE). */
  readonly straceOutput?: string;
  /** How long to wait for the helper-start record (default 15 s). */
  readonly startTimeoutMs?: number;
}

export interface HelperProcess {
  readonly ns: Netns;
  /** The helper's private directory (policy, socket, state). */
  readonly dir: string;
  readonly socket: string;
  readonly config: string;
  readonly stateDir: string;
  /** The helper's own pid (from its audit records; strace's child when under strace). */
  readonly pid: number;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** stderr lines that are not audit records. */
  otherLines(): string[];
  /** Every audit record so far, in order. */
  audit(): AuditEntry[];
  /** A position in the audit records, for auditSince. */
  auditMark(): number;
  auditSince(mark: number): AuditEntry[];
  /** Waits until at least `count` records arrived after `mark`; returns them (all of them). */
  waitForAudit(mark: number, count: number, timeoutMs?: number): Promise<AuditEntry[]>;
  /** Replace the policy (atomically: a new file renamed over the old one). */
  setPolicy(text: string): void;
  /** Names of the session records (*.json) in the state directory. */
  stateFiles(): string[];
  /** True while the helper process runs. */
  alive(): boolean;
  /** SIGTERM (then SIGKILL after 5 s); removes the directory. Idempotent. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function writePolicy(path: string, text: string): void {
  const temp = `${path}.new`;
  writeFileSync(temp, text, { mode: 0o644 });
  chmodSync(temp, 0o644);
  renameSync(temp, path);
}

export async function startHelper(ns: Netns, opts: HelperOptions): Promise<HelperProcess> {
  if (process.geteuid?.() !== 0) throw new Error('startHelper needs root: the helper makes taps and reads SO_PEERCRED');
  if (!existsSync(HELPER_MAIN)) throw new Error(`${HELPER_MAIN} is missing: run npm run build`);
  if (opts.straceOutput !== undefined && !existsSync(STRACE)) throw new Error(`${STRACE} is missing: apt-get install strace`);
  // short: a Unix socket path must fit in 107 bytes
  const dir = mkdtempSync('/tmp/xkvmh-');
  chmodSync(dir, 0o755);
  const socket = join(dir, 'helper.sock');
  const config = join(dir, 'helper.conf');
  const stateDir = join(dir, 'sessions');
  mkdirSync(stateDir, { mode: 0o700 });
  writePolicy(config, typeof opts.policy === 'function' ? opts.policy(dir) : opts.policy);

  const helperArgv = [process.execPath, HELPER_MAIN, '--socket', socket, '--config', config, '--state-dir', stateDir];
  const argv = opts.straceOutput === undefined
    ? helperArgv
    : [STRACE, '-f', '-v', '-s', '512', '-ttt', '-e', 'trace=execve', '-o', opts.straceOutput, ...helperArgv];
  const child: ChildProcess = ns.spawn(argv, { env: { ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'] });

  let stderr = '';
  let partial = '';
  const records: AuditEntry[] = [];
  const other: string[] = [];
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  child.on('error', (error) => {
    other.push(`spawn error: ${error.message}`);
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith(AUDIT_PREFIX)) {
        try {
          records.push(JSON.parse(line.slice(AUDIT_PREFIX.length)) as AuditEntry);
        } catch {
          other.push(line);
        }
      } else {
        other.push(line);
      }
    }
  });

  let pid = 0;
  const started = Date.now();
  const limit = opts.startTimeoutMs ?? 15_000;
  for (;;) {
    const start = records.find((r) => r.event === 'helper-start');
    if (start !== undefined) {
      pid = start.helper;
      break;
    }
    if (exit !== undefined || Date.now() - started > limit) {
      if (exit === undefined) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the helper did not start (${exit === undefined ? `nothing within ${limit} ms` : `exit ${exit.code ?? exit.signal}`}):\n${stderr}`);
    }
    await sleep(20);
  }

  let stopped: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const handle: HelperProcess = {
    ns,
    dir,
    socket,
    config,
    stateDir,
    pid,
    stderr: () => stderr,
    otherLines: () => [...other],
    audit: () => [...records],
    auditMark: () => records.length,
    auditSince: (mark) => records.slice(mark),
    async waitForAudit(mark, count, timeoutMs = 3000) {
      const until = Date.now() + timeoutMs;
      while (records.length - mark < count) {
        if (Date.now() > until) {
          throw new Error(`expected ${count} audit record(s), got ${records.length - mark}: ${JSON.stringify(records.slice(mark))}`);
        }
        await sleep(10);
      }
      return records.slice(mark);
    },
    setPolicy: (text) => writePolicy(config, text),
    // Session records are the .json files (the folder also holds the helpers' quota.lock).
    stateFiles: () => (existsSync(stateDir) ? readdirSync(stateDir).filter((n) => n.endsWith('.json')).sort() : []),
    alive: () => exit === undefined && isRunning(pid),
    stop() {
      stopped ??= (async () => {
        if (exit === undefined) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // gone already
          }
          const killer = setTimeout(() => {
            for (const target of [pid, child.pid]) {
              try {
                if (target !== undefined) process.kill(target, 'SIGKILL');
              } catch {
                // gone
              }
            }
          }, 5000);
          await exited;
          clearTimeout(killer);
        }
        rmSync(dir, { recursive: true, force: true });
        return exit ?? { code: null, signal: null };
      })();
      return stopped;
    },
  };
  return handle;
}
