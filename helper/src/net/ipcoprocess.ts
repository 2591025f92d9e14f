/**
 * A long-lived `ip -o -batch -` fed through a pipe. Starting any process costs 4–10 ms on the
 * hosts measured, several times the kernel's work for a whole make-nics request, so the helper
 * keeps one ip reading commands and writes each batch to it.
 *
 * How a batch ends: its lines are followed by a sentinel, `link show dev lo`, whose one-line
 * answer on stdout (ip flushes it) means every line before it succeeded. Without -force ip stops
 * at the first failing line, prints `Command failed -:N` (N counted over everything the process
 * has read) and exits: a batch that fails ends with the process, and the next batch starts a new
 * one. So the outcome is the same as one `ip -batch -` process per batch would give.
 *
 * Batches are written one at a time, each after the previous one ended, so a failure never takes
 * another batch's lines with it. The process runs with the fixed environment, in /, and is not
 * counted as keeping the helper alive; it reads EOF and exits when the helper does.
 *
 * What ip remembers: it resolves a device name to its ifindex once and keeps that for as long as
 * it runs (iproute2's name cache; nothing in batch mode refreshes it). So after
 * `ip link set br0 name br0old; ip link add br0 type bridge`, `master br0` in the same ip still
 * means br0old. A batch says which index each bridge it names must mean (`devices`); an ip that
 * resolved one of those names to another index is retired (its stdin closed: it exits) and a new
 * one runs the batch. `fresh` retires the running ip whatever it resolved.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Socket } from 'node:net';
import { NetError } from './errors.js';
import { parseFailedLines, type BatchOptions, type BatchOutcome } from './ipbatch.js';
import { IP_TIMEOUT_MS, TOOL_ENV, ipTool } from './tools.js';

const SENTINEL = 'link show dev lo';
/**
 * The commands it takes: the ones creating taps needs, none of which prints on stdout (anything
 * printed would be taken for the sentinel's answer).
 */
const QUIET = /^(tuntap add|link set|link del) /;
/** ip -o prints one line per device: `1: lo: <LOOPBACK,UP,…> …`. */
const SENTINEL_REPLY = /^\d+: lo: [^\n]*\n/m;

interface Job {
  readonly child: ChildProcessWithoutNullStreams;
  /** Lines the process had read before this batch. */
  readonly offset: number;
  readonly count: number;
  stdout: string;
  stderr: string;
  readonly finish: (outcome: BatchOutcome | Error) => void;
}

export interface IpCoprocessOptions {
  /** The ip binary (default: ipTool()). */
  readonly file?: () => string;
  readonly timeoutMs?: number;
}

export class IpCoprocess {
  readonly #file: () => string;
  readonly #timeoutMs: number;
  #child: ChildProcessWithoutNullStreams | undefined;
  /** Lines written to #child so far. */
  #written = 0;
  #job: Job | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #starts = 0;
  /** The ifindex the running ip resolved each name to, as far as known (batches' `devices`). */
  #resolved = new Map<string, number>();

  constructor(options: IpCoprocessOptions = {}) {
    this.#file = options.file ?? ipTool;
    this.#timeoutMs = options.timeoutMs ?? IP_TIMEOUT_MS;
  }

  /** How many ip processes this has started (one, plus one after each failed batch). */
  get starts(): number {
    return this.#starts;
  }

  /** The running ip's pid, if one is running. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Runs checked lines (see ipBatch) as one batch, without -force (`devices`, `fresh`: see above). */
  run(lines: readonly string[], opts: Pick<BatchOptions, 'devices' | 'fresh'> = {}): Promise<BatchOutcome> {
    // Nothing to write: an empty line would throw the line count (and so every later failure's
    // attribution) out by one.
    if (lines.length === 0) return Promise.resolve({ ok: true, failedLines: [], stderr: '' });
    const loud = lines.find((l) => !QUIET.test(l));
    if (loud !== undefined) {
      return Promise.reject(new NetError('SYSTEM_ERROR', `internal error: the long-lived ip takes only tuntap add, link set and link del, not ${JSON.stringify(loud)}`));
    }
    const next = this.#queue.then(() => this.#runFresh(lines, opts));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Retires the running ip if it may mean other devices than `devices` say (or when `fresh`), then runs the batch. */
  async #runFresh(lines: readonly string[], { devices, fresh }: Pick<BatchOptions, 'devices' | 'fresh'>): Promise<BatchOutcome> {
    const stale = [...devices ?? []].some(([name, index]) => (this.#resolved.get(name) ?? index) !== index);
    const child = this.#child;
    if (child !== undefined && (fresh === true || stale)) {
      this.#child = undefined;
      child.stdin.end();
    }
    const outcome = await this.#run(lines);
    // A batch that failed ended its ip; one that succeeded resolved these names as told (a
    // rename between the caller's check and ip's lookup is for the caller to find).
    if (outcome.ok) for (const [name, index] of devices ?? []) this.#resolved.set(name, index);
    return outcome;
  }

  /**
   * Runs checked lines with `-force`'s outcome: a failing line does not stop the lines after it
   * (they go to a new ip, the failure having ended the old one). Failures should be rare here:
   * deleting checks first that each device exists.
   */
  async runForced(lines: readonly string[]): Promise<BatchOutcome> {
    const failedLines: number[] = [];
    let stderr = '';
    for (let from = 0; from < lines.length;) {
      const outcome = await this.run(lines.slice(from));
      stderr += outcome.stderr;
      if (outcome.ok) break;
      const first = outcome.failedLines[0];
      // Stopped somewhere unknown: the caller checks what is left.
      if (first === undefined) return { ok: false, failedLines, stderr };
      failedLines.push(from + first);
      from += first;
    }
    return { ok: failedLines.length === 0, failedLines, stderr };
  }

  #run(lines: readonly string[]): Promise<BatchOutcome> {
    const child = this.#child ?? this.#start();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        job.finish(new NetError('SYSTEM_ERROR', `ip did not finish within ${this.#timeoutMs} ms`));
        // The next batch must not be written to this one while it dies.
        if (this.#child === child) this.#child = undefined;
        child.kill('SIGKILL');
      }, this.#timeoutMs);
      const job: Job = {
        child, offset: this.#written, count: lines.length, stdout: '', stderr: '',
        finish: (outcome) => {
          if (this.#job !== job) return;
          this.#job = undefined;
          clearTimeout(timer);
          if (outcome instanceof Error) reject(outcome);
          else resolve(outcome);
        },
      };
      this.#job = job;
      this.#written += lines.length + 1;
      child.stdin.write(`${lines.join('\n')}\n${SENTINEL}\n`);
    });
  }

  #start(): ChildProcessWithoutNullStreams {
    const child = spawn(this.#file(), ['-o', '-batch', '-'], {
      shell: false, env: { ...TOOL_ENV }, cwd: '/', stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#starts += 1;
    this.#child = child;
    this.#written = 0;
    this.#resolved = new Map();
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      const job = this.#job;
      if (job?.child !== child) return;
      job.stdout += text;
      if (SENTINEL_REPLY.test(job.stdout)) job.finish({ ok: true, failedLines: [], stderr: job.stderr });
    });
    child.stderr.on('data', (text: string) => {
      if (this.#job?.child === child) this.#job.stderr += text;
    });
    // Writing to an ip that has just exited: its exit reports the outcome.
    child.stdin.on('error', () => undefined);
    child.on('error', (error) => this.#gone(child, new NetError('SYSTEM_ERROR', `could not run ${this.#file()}: ${error.message}`, { cause: error })));
    child.on('close', (code, signal) => this.#gone(child, { code, signal }));
    // An idle ip must not keep the helper running (a pending batch's timer does while it runs).
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as Socket).unref();
    return child;
  }

  /** The process ended or could not start: the batch it was running, if any, failed. */
  #gone(child: ChildProcessWithoutNullStreams, how: NetError | { code: number | null; signal: NodeJS.Signals | null }): void {
    if (this.#child === child) this.#child = undefined;
    const job = this.#job;
    if (job?.child !== child) return;
    if (how instanceof NetError) {
      job.finish(how);
      return;
    }
    // Numbers count every line the process read; keep this batch's, from 1. A failing sentinel
    // would mean no `lo`: report no line, so the caller checks what exists.
    const failedLines = parseFailedLines(job.stderr).map((n) => n - job.offset).filter((n) => n >= 1 && n <= job.count);
    const stderr = job.stderr !== '' ? job.stderr
      : `ip exited (${how.signal ?? `status ${String(how.code)}`}) without an error message\n`;
    job.finish({ ok: false, failedLines, stderr });
  }
}
