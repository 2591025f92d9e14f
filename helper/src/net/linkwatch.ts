/**
 * Link deletions as they happen (issue 11; records/fdtaps.ts watches fd taps with it): a long-lived
 * `ip -o monitor link` (absolute path, fixed environment, in /, no shell) whose "Deleted" lines
 * are reported as {ifindex, name}. The helper needs it for fd handoff: a tap handed over as a file
 * descriptor dies with its last holder (qemu), and OVS keeps the port record of a device that is
 * gone, so the helper removes that port and forgets the tap when the kernel reports the deletion.
 *
 * ip -o prints one line per event: `7: tap0: <...> mtu ...` for a new or changed link,
 * `Deleted 7: tap0: <...> ...` for a removed one (also one moved to another namespace). Only
 * Deleted lines count, and only as a hint: the bridge layer sends RTM_DELLINK too (family
 * AF_BRIDGE) when a port merely leaves its bridge (`nomaster`), and again while a port is being
 * unregistered, and ip prints both as "Deleted" whatever -f says. So a Deleted line is reported
 * only when the link is really gone (`isGone`: /sys/class/net/NAME/ifindex is absent or another
 * index), and each ifindex once (the kernel does not reuse an index soon; the last 256 reported
 * are remembered). Names are never trusted beyond the
 * interface-name check (1-15 bytes, no '/', ':', whitespace); the ifindex is what the ledger
 * compares. Memory is bounded: a partial line longer than MAX_LINE is dropped up to its newline.
 *
 * Restartable: if ip exits (killed, or the netlink socket overflowed: ip monitor exits on ENOBUFS),
 * it is started again, 100 ms doubling to 5 s, and `onRestart` is called once it runs again: events
 * in between were lost, so the owner must reconcile (list the links it cares about). `stop()` ends
 * it for good. The child does not keep the helper alive (unref'd).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { TOOL_ENV, ipTool } from './tools.js';

/** util-linux's setpriv: runs ip with PR_SET_PDEATHSIG, so a helper SIGKILLed does not leave it behind. */
const SETPRIV = '/usr/bin/setpriv';

/**
 * `ip -o monitor link`, under `setpriv --pdeathsig KILL` where setpriv exists (it execs ip: same
 * pid; ip then dies with the helper however the helper dies, instead of at its next line on the
 * closed pipe, which may be long in a quiet namespace).
 */
function defaultCommand(): string[] {
  const ip = [ipTool(), '-o', 'monitor', 'link'];
  try {
    accessSync(SETPRIV, constants.X_OK);
    return [SETPRIV, '--pdeathsig', 'KILL', ...ip];
  } catch {
    return ip;
  }
}

export interface LinkDeleted {
  readonly ifindex: number;
  readonly name: string;
}

export interface LinkWatchOptions {
  /** Called once for every link that is gone, in the kernel's order. */
  readonly onDeleted: (link: LinkDeleted) => void;
  /** Called after ip had to be started again: deletions may have been missed meanwhile. */
  readonly onRestart?: () => void;
  /** What ip said on stderr when it ended, for the log (escaped by the caller before printing). */
  readonly onExit?: (detail: string) => void;
  /**
   * Whether the link is gone (default: its /sys/class/net entry is absent or has another ifindex).
   * @internal Tests watching another namespace look at that namespace's /sys.
   */
  readonly isGone?: (link: LinkDeleted) => boolean;
  /**
   * The command (default: `ip -o monitor link`, under `setpriv --pdeathsig KILL` where it exists).
   * @internal Tests watch another namespace (`ip -n NS ...`) or a command that ends.
   */
  readonly command?: readonly string[];
}

export interface LinkWatch {
  /** Ends the watch: ip is killed and not started again. Idempotent. */
  stop(): void;
}

/** Longest line kept (a link line is ~200 bytes); anything longer is dropped to its newline. */
const MAX_LINE = 4096;
const MAX_STDERR = 2048;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
/** A run this long resets the backoff. */
const STABLE_MS = 10_000;

/** Ifindexes reported lately, not reported again. */
const REMEMBERED = 256;

const DELETED = /^Deleted (\d{1,10}): ([^\s:/]{1,15}?)(?:@[^\s:]*)?: /;

/**
 * The link a `ip -o monitor link` line reports deleted, or undefined for any other line.
 * @internal Exported for its unit test.
 */
export function parseDeleted(line: string): LinkDeleted | undefined {
  const m = DELETED.exec(line);
  if (m === null) return undefined;
  const ifindex = Number(m[1]);
  const name = m[2] ?? '';
  if (!Number.isSafeInteger(ifindex) || ifindex <= 0 || ifindex > 0x7fff_ffff || name === '' || name === '.' || name === '..') return undefined;
  return { ifindex, name };
}

/**
 * Splits a byte stream into lines, keeping at most `max` characters of an unfinished line: a
 * longer line is dropped whole (up to its newline).
 * @internal Exported for its unit test.
 */
export class LineSplitter {
  #partial = '';
  #dropping = false;

  constructor(private readonly max: number = MAX_LINE) {}

  /** The complete lines in `chunk` (with what came before it). */
  push(chunk: string): string[] {
    const out: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      const piece = chunk.slice(start, nl);
      if (!this.#dropping && this.#partial.length + piece.length <= this.max) out.push(this.#partial + piece);
      this.#partial = '';
      this.#dropping = false;
      start = nl + 1;
    }
    const rest = chunk.slice(start);
    if (!this.#dropping) {
      if (this.#partial.length + rest.length > this.max) {
        this.#partial = '';
        this.#dropping = true;
      } else {
        this.#partial += rest;
      }
    }
    return out;
  }
}

/** The default isGone: the name's sysfs entry is absent, or belongs to another ifindex now. */
function goneFromSysfs(link: LinkDeleted): boolean {
  try {
    return Number(readFileSync(`/sys/class/net/${link.name}/ifindex`, 'utf8').trim()) !== link.ifindex;
  } catch {
    return true;
  }
}

/**
 * Starts watching link deletions; see the top of this file.
 */
export function watchLinkDeletions(options: LinkWatchOptions): LinkWatch {
  const command = options.command ?? defaultCommand();
  const [file, ...args] = command;
  if (file === undefined) throw new Error('watchLinkDeletions: empty command');
  let child: ChildProcess | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let backoff = FIRST_BACKOFF_MS;
  let runs = 0;
  const isGone = options.isGone ?? goneFromSysfs;
  const reported: number[] = [];
  const report = (link: LinkDeleted): void => {
    if (stopped || reported.includes(link.ifindex) || !isGone(link)) return;
    reported.push(link.ifindex);
    if (reported.length > REMEMBERED) reported.shift();
    options.onDeleted(link);
  };

  const start = (): void => {
    if (stopped) return;
    runs += 1;
    const restarted = runs > 1;
    const startedAt = Date.now();
    const splitter = new LineSplitter();
    let stderr = '';
    const c = spawn(file, args, { cwd: '/', env: { ...TOOL_ENV }, stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    child = c;
    c.unref();
    for (const stream of [c.stdout, c.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
    c.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) {
        const link = parseDeleted(line);
        if (link !== undefined) report(link);
      }
    });
    c.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_STDERR) stderr = (stderr + chunk).slice(0, MAX_STDERR);
    });
    c.once('spawn', () => {
      if (restarted && !stopped) options.onRestart?.();
    });
    c.once('error', (error) => {
      stderr = stderr || error.message;
    });
    c.once('close', (code, signal) => {
      if (child === c) child = undefined;
      if (stopped) return;
      options.onExit?.(`${file} ${args.join(' ')} ended (${signal ?? `status ${code}`})${stderr === '' ? '' : `: ${stderr.trim()}`}`);
      if (Date.now() - startedAt >= STABLE_MS) backoff = FIRST_BACKOFF_MS;
      timer = setTimeout(start, backoff);
      timer.unref();
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    });
  };

  start();
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      child?.kill('SIGKILL');
      child = undefined;
    },
  };
}
