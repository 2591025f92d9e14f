/**
 * test/support/fd-client.py driven from a test: a client of the helper that is not the project's
 * own (Python's socket.recvmsg with room for fds), its JSON lines read one at a time. See the
 * script for its spec.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { decodeMessage, encodeBody } from '../../shared/src/protocol/decode.js';
import { encodeFrame } from '../../shared/src/protocol/frame.js';
import type { Reply } from '../../shared/src/protocol/messages.js';
import { parseReply } from '../../shared/src/protocol/validate.js';
import type { Netns } from './netns.js';
import { PATIENCE_MS, waitFor } from './wait.js';

const SCRIPT = fileURLToPath(new URL('../../../test/support/fd-client.py', import.meta.url));

interface FdSeen {
  /** Where in its reply frame the fd arrived (0: with the first byte). */
  readonly at: number;
  /** The tun device it is attached to (fdinfo `iff:`), null for anything else. */
  readonly iff: string | null;
  /** readlink of /proc/self/fd/N. */
  readonly target: string;
}

interface Report {
  readonly replies: { frame: string; fds: FdSeen[] }[];
  readonly ctrunc: boolean;
}

export class PyClient {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #buffer = '';
  #stderr = '';

  constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#buffer += chunk;
      const lines = this.#buffer.split('\n');
      this.#buffer = lines.pop() ?? '';
      this.#lines.push(...lines);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.#stderr += chunk; });
    child.stdin?.on('error', () => undefined);
  }

  async #line<T>(): Promise<T> {
    const { value } = await waitFor(() => {
      const line = this.#lines.shift();
      if (line === undefined && this.#child.exitCode !== null) throw new Error(`fd-client.py exited ${this.#child.exitCode}: ${this.#stderr}`);
      return line;
    }, PATIENCE_MS, { what: 'a line from fd-client.py', describe: () => this.#stderr });
    return JSON.parse(value) as T;
  }

  /** The replies to its requests, with the fds each brought. */
  report(): Promise<Report> {
    return this.#line<Report>();
  }

  /** Close the fds it holds (spec `hold`); resolves once they are closed. */
  async closeFds(): Promise<void> {
    this.#child.stdin?.write('\n');
    await this.#line();
  }

  /** Ends it (closing whatever it still holds); SIGKILL if it has not exited 5 s later (stuck reading). */
  async end(): Promise<void> {
    this.#child.stdin?.end();
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** fd-client.py in the namespace, as `user` (root when undefined). */
export function pyClient(ns: Netns, user: string | undefined, spec: Record<string, unknown>): PyClient {
  return new PyClient(ns.spawn(['/usr/bin/python3', SCRIPT, JSON.stringify(spec)], { ...(user === undefined ? {} : { user }), stdio: ['pipe', 'pipe', 'pipe'] }));
}

/** fd-client.py as root here (its `spawn` argv does the rest: e.g. pkexec as a user in a namespace). */
export function pyClientHere(spec: Record<string, unknown>): PyClient {
  return new PyClient(spawn('/usr/bin/python3', [SCRIPT, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] }));
}

/** A request as the hex of its frame (fd-client.py's `requests`). */
export function frame(value: Record<string, unknown>): string {
  return encodeFrame(encodeBody(value as Parameters<typeof encodeBody>[0])).toString('hex');
}

/** A reply frame's hex, read by the client's own parseReply. */
export function replyOf(hex: string): Reply {
  return parseReply(decodeMessage(Buffer.from(hex, 'hex').subarray(4)));
}
