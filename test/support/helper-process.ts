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
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Netns } from './netns.js';
import { HELPER_MAIN, makeScratch, watch } from './helper-proc.js';
import { isRunning } from './procs.js';
import { PATIENCE_MS, waitFor } from './wait.js';

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
  /** More arguments for the helper (e.g. `--idle-connection-seconds 1`). */
  readonly args?: readonly string[];
  /** Added to the helper's environment (which is otherwise PATH, HOME, USER, LOGNAME, LANG=C). */
  readonly env?: Readonly<Record<string, string>>;
  /** Run the helper under `strace -f -v -s 512 -ttt -e trace=execve -o FILE` (absolute FILE). */
  readonly straceOutput?: string;
  /** How long to wait for the helper-start record (default 15 s). */
  readonly startTimeoutMs?: number;
  /**
   * Keep the state directory on a tmpfs of its own, as the installed helper's /run/xkvm is on
   * every systemd host (the bench: records and ledger are renamed into place on every request,
   * which costs several times more on a disk file system such as this machine's /tmp).
   */
  readonly stateOnTmpfs?: boolean;
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
  const scratch = makeScratch('h');
  const { dir } = scratch;
  const socket = join(dir, 'helper.sock');
  const config = join(dir, 'helper.conf');
  const stateDir = scratch.state;
  mkdirSync(stateDir, { mode: 0o700 });
  let unmount = (): void => undefined;
  if (opts.stateOnTmpfs === true) {
    const r = spawnSync('/usr/bin/mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=64m', 'tmpfs', stateDir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cannot mount a tmpfs on ${stateDir}: ${r.stderr}`);
    unmount = () => void spawnSync('/usr/bin/umount', [stateDir]);
  }
  writePolicy(config, typeof opts.policy === 'function' ? opts.policy(dir) : opts.policy);

  const helperArgv = [process.execPath, HELPER_MAIN, '--socket', socket, '--config', config, '--state-dir', stateDir, ...opts.args ?? []];
  const argv = opts.straceOutput === undefined
    ? helperArgv
    : [STRACE, '-f', '-v', '-s', '512', '-ttt', '-e', 'trace=execve', '-o', opts.straceOutput, ...helperArgv];
  const w = watch(ns.spawn(argv, { env: { ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'] }));
  const records = w.audits as unknown as AuditEntry[];
  const child = w.child;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = w.exited.then((e) => (exit = e));

  let pid: number;
  try {
    pid = (await w.audit((r) => r.event === 'helper-start', opts.startTimeoutMs ?? 15_000, 'the helper to start') as unknown as AuditEntry).helper;
  } catch (error) {
    w.kill('SIGKILL');
    await w.exited;
    unmount();
    scratch.remove();
    throw new Error(`the helper did not start: ${(error as Error).message}`);
  }

  let stopped: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const handle: HelperProcess = {
    ns,
    dir,
    socket,
    config,
    stateDir,
    pid,
    stderr: () => w.stderr(),
    otherLines: () => w.stderr().split('\n').filter((l) => l !== '' && !l.startsWith(AUDIT_PREFIX)),
    audit: () => [...records],
    auditMark: () => records.length,
    auditSince: (mark) => records.slice(mark),
    async waitForAudit(mark, count, timeoutMs = PATIENCE_MS) {
      await waitFor(() => records.length - mark >= count, timeoutMs, {
        what: `${count} audit record(s)`, describe: () => `got ${records.length - mark}: ${JSON.stringify(records.slice(mark))}`,
      });
      return records.slice(mark);
    },
    setPolicy: (text) => writePolicy(config, text),
    // Session records are the .json files (the ledger and the per-uid locks are in ledger/).
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
        unmount();
        scratch.remove();
        return exit ?? { code: null, signal: null };
      })();
      return stopped;
    },
  };
  return handle;
}
