/**
 * Fd handoff's two native steps (issue 11): opening a tap
 * as root without making it persistent, and sending reply bytes with the tap's fds as
 * SCM_RIGHTS on a connected Unix stream socket that Node also writes to. See docs/fd-handoff.md.
 */
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { socketFd } from '../identity/peercred.js';
import { NetError } from '../net/errors.js';
import { addon } from './addon.js';

export interface OpenedTap {
  /** The device's actual name (the kernel's choice when a "%d" template was given). */
  readonly name: string;
  /** One fd per queue, O_CLOEXEC; the device lives as long as one of them is open anywhere. */
  readonly fds: readonly number[];
}

function errnoName(error: unknown): string | undefined {
  const code: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'code') : undefined;
  return typeof code === 'string' ? code : undefined;
}

function isFd(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/**
 * Opens tap `name` (or a name the kernel draws from a template with one "%d") with
 * IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, plus IFF_MULTI_QUEUE and one fd per queue when `queues` > 1,
 * owned by `uid`, not persistent. A device of that name that exists already is never joined
 * (IFF_TUN_EXCL): BAD_NAME. Other failures are SYSTEM_ERROR; nothing is left open.
 */
export function openTap(name: string, queues: number, uid: number): OpenedTap {
  let raw: unknown;
  try {
    raw = addon().openTap(name, queues, uid);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    if (errnoName(error) === 'EBUSY') {
      throw new NetError('BAD_NAME', `cannot open tap ${JSON.stringify(name)}: a device of that name exists already (${detail})`, { cause: error });
    }
    throw new NetError('SYSTEM_ERROR', `cannot open tap ${JSON.stringify(name)}: ${detail}`, { cause: error });
  }
  const actual: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'name') : undefined;
  const fds: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'fds') : undefined;
  if (typeof actual !== 'string' || !Array.isArray(fds) || fds.length !== queues || !fds.every(isFd)) {
    throw new NetError('SYSTEM_ERROR', 'the native addon returned a malformed tap');
  }
  return { name: actual, fds };
}

export interface SendWithFdsOptions {
  /** Give up (SYSTEM_ERROR) when the peer has not made room for the first byte by then; default 10 s. */
  readonly timeoutMs?: number;
}

/** Waits, 1 ms doubling to 64 ms, while `busy()`; false when `deadline` passes first. */
async function waitWhile(busy: () => boolean, deadline: number): Promise<boolean> {
  for (let pause = 1; busy(); pause = Math.min(pause * 2, 64)) {
    if (Date.now() >= deadline) return false;
    await sleep(pause);
  }
  return true;
}

/**
 * Sends `data` on `socket` with `fds` as SCM_RIGHTS on its first byte, in order. Node cannot send
 * ancillary data, so the first bytes go out through the addon's sendmsg on the socket's own fd,
 * and ordering with Node's writes is kept by two rules: (1) nothing of Node's is queued: it
 * waits until `socket.writableLength` is 0 (Writable counts a chunk until libuv has handed it to
 * the kernel), then calls sendmsg in the same tick, so no write of Node's can come between;
 * (2) whatever sendmsg did not take (a partial write: the fds have travelled with the first
 * byte) is written through `socket.write`, behind nothing. When the socket's buffer is full
 * (EAGAIN: nothing sent, the fds not yet), it retries, 1 ms doubling to 64 ms, until the
 * deadline. The caller keeps ownership of `fds` and closes them afterwards, sent or not.
 */
export async function sendWithFds(socket: Socket, data: Buffer, fds: readonly number[], options: SendWithFdsOptions = {}): Promise<void> {
  if (data.length === 0) throw new NetError('SYSTEM_ERROR', 'fds need at least one byte of reply to travel with');
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const closed = (): boolean => socket.destroyed || socket.writableEnded;
  for (let pause = 1; ; pause = Math.min(pause * 2, 64)) {
    if (!(await waitWhile(() => !closed() && socket.writableLength > 0, deadline))) {
      throw new NetError('SYSTEM_ERROR', 'cannot send the tap fds: the peer does not read its replies');
    }
    const fd = closed() ? undefined : socketFd(socket);
    if (fd === undefined) throw new NetError('SYSTEM_ERROR', 'cannot send the tap fds: the connection is closed');
    let sent: unknown;
    try {
      sent = addon().sendFds(fd, data, fds);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new NetError('SYSTEM_ERROR', `cannot send the tap fds: ${detail}`, { cause: error });
    }
    if (typeof sent !== 'number' || !Number.isInteger(sent) || sent < 0 || sent > data.length) {
      throw new NetError('SYSTEM_ERROR', 'the native addon returned a malformed byte count');
    }
    if (sent === data.length) return;
    if (sent > 0) {
      const rest = data.subarray(sent);
      await new Promise<void>((resolve, reject) => {
        socket.write(rest, (error) => {
          if (error) reject(new NetError('SYSTEM_ERROR', `cannot send the rest of the reply: ${error.message}`, { cause: error }));
          else resolve();
        });
      });
      return;
    }
    if (Date.now() >= deadline) throw new NetError('SYSTEM_ERROR', 'cannot send the tap fds: the peer does not read its replies');
    await sleep(pause);
  }
}
