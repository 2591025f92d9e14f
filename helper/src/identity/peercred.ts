/**
 * Who is on the other end of a Unix socket: the kernel's SO_PEERCRED, read through the native
 * addon (Node has no API for it). Never a uid sent in a request.
 */
import type { Socket } from 'node:net';
import { addon } from '../native/addon.js';
import { IdentityError } from './errors.js';

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}
function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}

/**
 * SO_PEERCRED of a connected Unix socket given by file descriptor.
 * @internal The helper calls peerCredentials(socket); the tests call this with fds that are no
 * socket, or closed, which a net.Socket cannot hold.
 */
export function peerCredentialsFromFd(fd: number): PeerCredentials {
  const native = addon();
  let raw: unknown;
  try {
    raw = native.peerCred(fd);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new IdentityError(`cannot tell who is on the other end of the socket (fd ${fd}): ${detail}`, { cause: error });
  }
  if (typeof raw !== 'object' || raw === null) throw new IdentityError('the peer-credential addon returned no credentials');
  const pid: unknown = Reflect.get(raw, 'pid');
  const uid: unknown = Reflect.get(raw, 'uid');
  const gid: unknown = Reflect.get(raw, 'gid');
  if (!isId(pid) || pid === 0 || !isId(uid) || !isId(gid)) {
    throw new IdentityError('the peer-credential addon returned malformed credentials', { cause: raw });
  }
  return { pid, uid, gid };
}

/** The file descriptor behind a net.Socket (a connected Unix socket), or undefined. */
export function socketFd(socket: Socket): number | undefined {
  const handle: unknown = Reflect.get(socket, '_handle');
  if (typeof handle !== 'object' || handle === null) return undefined;
  const fd: unknown = Reflect.get(handle, 'fd');
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/** Who is on the other end of `socket`, as the kernel recorded it at connect() time. */
export function peerCredentials(socket: Socket): PeerCredentials {
  const fd = socketFd(socket);
  if (fd === undefined) {
    throw new IdentityError(
      socket.destroyed
        ? 'cannot tell who is on the other end of the socket: it is already closed'
        : 'cannot tell who is on the other end of the socket: it has no file descriptor (not a Unix socket?)',
    );
  }
  return peerCredentialsFromFd(fd);
}
