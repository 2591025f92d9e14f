/**
 * The client's native addon, fdpass.node (C in helper/native/fdpass.c, built beside the helper's
 * addon by the same `npm install` step; see docs/fd-handoff.md): receiving file descriptors sent
 * as SCM_RIGHTS (Node cannot recvmsg ancillary data) and passing them on, for fd handoff (issue
 * 11). Every fd it receives is O_CLOEXEC: none leaks into a
 * child unless the caller hands it over on purpose (setCloexec(fd, false), or dup2 by a spawn's
 * stdio).
 */
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDONS_FROM_ROOT, findPackageRoot } from '../../../shared/src/native/package-root.js';
import { ClientError } from '../errors.js';

export interface Received {
  /** The bytes of one recvmsg (empty at the end of the stream). */
  readonly data: Buffer;
  /** The fds that came with them, in the sender's order, each O_CLOEXEC. */
  readonly fds: readonly number[];
}

interface FdPass {
  sendFds(fd: number, data: Buffer, fds: readonly number[]): unknown;
  recvFds(fd: number, maxBytes: number, maxFds: number, timeoutMs: number): unknown;
  socketPair(): unknown;
  setCloexec(fd: number, on: boolean): unknown;
  connectUnix(path: string, timeoutMs: number): unknown;
  socketType(fd: number): unknown;
}

/** This module's directory: from the bundle (CommonJS, dist/bin) or from tsc's ESM output. */
function here(): string {
  return typeof __filename === 'string' ? dirname(__filename) : dirname(fileURLToPath(import.meta.url));
}

let loaded: FdPass | undefined;

function fdpass(): FdPass {
  if (loaded !== undefined) return loaded;
  const root = findPackageRoot(here());
  const file = root === undefined ? undefined : join(root, ...ADDONS_FROM_ROOT, 'fdpass.node');
  let module: unknown;
  try {
    if (file === undefined) throw new Error(`no xkvm package.json above ${here()}`);
    module = createRequire(join(here(), 'x.js'))(file);
  } catch (error) {
    throw new ClientError('HELPER',
      `xkvm's native addon for fd handoff is not built (${file ?? 'package root not found'}): ` +
        'run `npm rebuild` in the xkvm package directory (it needs g++, make and python3)',
      { cause: error },
    );
  }
  const fn = (name: keyof FdPass): ((...args: unknown[]) => unknown) => {
    const f: unknown = typeof module === 'object' && module !== null ? Reflect.get(module, name) : undefined;
    if (typeof f !== 'function') throw new ClientError('HELPER', `${file} does not export ${name}(): run \`npm rebuild\``);
    return (...args) => Reflect.apply(f, undefined, args);
  };
  const [send, recv, pair, cloexec, connect, type] =
    [fn('sendFds'), fn('recvFds'), fn('socketPair'), fn('setCloexec'), fn('connectUnix'), fn('socketType')];
  loaded = {
    sendFds: (fd, data, fds) => send(fd, data, fds),
    recvFds: (fd, maxBytes, maxFds, timeoutMs) => recv(fd, maxBytes, maxFds, timeoutMs),
    socketPair: () => pair(),
    setCloexec: (fd, on) => cloexec(fd, on),
    connectUnix: (path, timeoutMs) => connect(path, timeoutMs),
    socketType: (fd) => type(fd),
  };
  return loaded;
}

function isFd(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function failed(what: string, error: unknown): ClientError {
  return new ClientError('HELPER', `${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

/**
 * One recvmsg on the connected Unix stream socket `fd`, on a worker thread, waiting up to
 * `timeoutMs` (-1: no limit) for input: at most `maxBytes` bytes and `maxFds` fds (more fds than
 * that is an error, and every fd of that message is closed). The socket must not be read by
 * anything else meanwhile (not wrapped in a net.Socket that reads).
 */
export async function receiveWithFds(fd: number, maxBytes: number, maxFds: number, timeoutMs: number): Promise<Received> {
  let raw: unknown;
  try {
    raw = await fdpass().recvFds(fd, maxBytes, maxFds, timeoutMs);
  } catch (error) {
    if (error instanceof ClientError) throw error;
    throw failed('cannot receive from the helper', error);
  }
  const data: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'data') : undefined;
  const fds: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'fds') : undefined;
  if (!Buffer.isBuffer(data) || !Array.isArray(fds) || !fds.every(isFd)) throw new ClientError('HELPER', 'the fd-passing addon returned a malformed message');
  return { data, fds };
}

/**
 * Sends all of `data` on the connected Unix stream socket `fd` (not one Node writes to), with
 * `fds` as SCM_RIGHTS on its first byte: how xkvm-bridge-helper hands qemu its tap over qemu's
 * fd N. Retries while the socket's buffer is full, 1 ms doubling to 64 ms, up to `timeoutMs`.
 */
export async function sendWithFds(fd: number, data: Buffer, fds: readonly number[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let offset = 0;
  for (let pause = 1; offset < data.length; pause = Math.min(pause * 2, 64)) {
    let sent: unknown;
    try {
      sent = fdpass().sendFds(fd, data.subarray(offset), offset === 0 ? fds : []);
    } catch (error) {
      if (error instanceof ClientError) throw error;
      throw failed('cannot pass the file descriptors on', error);
    }
    if (typeof sent !== 'number' || !Number.isInteger(sent) || sent < 0) throw new ClientError('HELPER', 'the fd-passing addon returned a malformed byte count');
    offset += sent;
    if (sent > 0) pause = 1;
    else if (Date.now() >= deadline) throw new ClientError('HELPER', 'cannot pass the file descriptors on: the other side does not read');
    else await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/**
 * A connected pair of Unix stream sockets, both O_CLOEXEC (for a helper under pkexec: one end as
 * its stdin/stdout).
 */
export function socketPair(): [number, number] {
  let raw: unknown;
  try {
    raw = fdpass().socketPair();
  } catch (error) {
    if (error instanceof ClientError) throw error;
    throw failed('cannot make a socket pair', error);
  }
  if (!Array.isArray(raw) || raw.length !== 2 || !isFd(raw[0]) || !isFd(raw[1])) throw new ClientError('HELPER', 'the fd-passing addon returned a malformed socket pair');
  return [raw[0], raw[1]];
}

/**
 * Sets or clears FD_CLOEXEC on `fd`: cleared only for an fd deliberately inherited by a child
 * (qemu's tap fds through node-pty, which keeps every non-CLOEXEC fd; see docs/fd-handoff.md).
 */
export function setCloseOnExec(fd: number, on: boolean): void {
  try {
    fdpass().setCloexec(fd, on);
  } catch (error) {
    if (error instanceof ClientError) throw error;
    throw failed(`cannot change close-on-exec on fd ${fd}`, error);
  }
}

/** The errno name of a failed native call (e.g. 'ENOENT'), if it has one. */
export function errnoCode(error: unknown): string | undefined {
  const cause: unknown = error instanceof ClientError ? error.cause : error;
  const code: unknown = typeof cause === 'object' && cause !== null ? Reflect.get(cause, 'code') : undefined;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A Unix stream socket connected to `path`, O_CLOEXEC, as a bare fd that only this addon reads
 * and writes (see receiveWithFds). Waits at most `timeoutMs` while the listener's backlog is full.
 */
export function connectUnix(path: string, timeoutMs = 10_000): number {
  let raw: unknown;
  try {
    raw = fdpass().connectUnix(path, timeoutMs);
  } catch (error) {
    if (error instanceof ClientError) throw error;
    throw failed(`cannot connect to ${path}`, error);
  }
  if (!isFd(raw)) throw new ClientError('HELPER', 'the fd-passing addon returned a malformed fd');
  return raw;
}

/**
 * Whether `fd` is a Unix stream socket ('yes'), another kind of socket or not a socket ('no'),
 * or not open ('closed').
 */
export function unixStreamSocket(fd: number): 'yes' | 'no' | 'closed' {
  let raw: unknown;
  try {
    raw = fdpass().socketType(fd);
  } catch (error) {
    if (error instanceof ClientError) throw error;
    const code = errnoCode(error);
    if (code === 'EBADF') return 'closed';
    if (code === 'ENOTSOCK') return 'no';
    throw failed(`cannot inspect fd ${fd}`, error);
  }
  const domain: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'domain') : undefined;
  const type: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'type') : undefined;
  return domain === 'unix' && type === 'stream' ? 'yes' : 'no';
}

/** Closes every fd in `fds`, ignoring the ones already gone. */
export function closeFds(fds: Iterable<number>): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
