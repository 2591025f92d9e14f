/**
 * Who is on the other end of a Unix socket: the kernel's SO_PEERCRED, read through the small
 * N-API addon in helper/native (Node has no API for it). Never a uid sent in a request.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '../../../shared/src/protocol/codes.js';

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The caller could not be identified: the addon is missing, or the kernel would not say. */
export class IdentityError extends Error {
  override readonly name = 'IdentityError';
  readonly code = ErrorCode.NoIdentity;

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

interface Addon {
  peerCred(fd: number): unknown;
  tryLockExclusive(fd: number): unknown;
}

const PACKAGE_NAME = 'xkvm';
const ADDON_FROM_ROOT = ['helper', 'native', 'build', 'Release', 'peercred.node'] as const;

/**
 * The package root: the nearest directory at or above `start` whose package.json is named
 * "xkvm". Works from the sources (helper/src/identity) and the build (dist/helper/src/identity).
 */
export function findPackageRoot(start: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const manifest: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (typeof manifest === 'object' && manifest !== null && Reflect.get(manifest, 'name') === PACKAGE_NAME) return dir;
    } catch {
      // No package.json here, or not ours: keep walking up.
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Where the built addon is expected, or undefined when the package root cannot be found. */
export function defaultAddonPath(): string | undefined {
  const root = findPackageRoot();
  return root === undefined ? undefined : join(root, ...ADDON_FROM_ROOT);
}

function notBuilt(where: string, cause?: unknown): IdentityError {
  return new IdentityError(
    `the peer-credential addon is not built (${where}), so socket callers cannot be identified: ` +
      'run `npm rebuild` or `node helper/native/build.mjs` in the xkvm package directory as the ' +
      'user who installed it (it needs g++, make and python3); see helper/native/README.md',
    { cause },
  );
}

/** Loads the addon from `file`; every failure is an IdentityError saying how to build it. */
export function loadPeerCredAddon(file: string | undefined = defaultAddonPath()): Addon {
  if (file === undefined) throw notBuilt(`no package.json named "${PACKAGE_NAME}" above ${import.meta.url}`);
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(file);
  } catch (error) {
    throw notBuilt(`cannot load ${file}`, error);
  }
  const peerCred: unknown = typeof loaded === 'object' && loaded !== null ? Reflect.get(loaded, 'peerCred') : undefined;
  if (typeof peerCred !== 'function') throw notBuilt(`${file} does not export peerCred()`);
  const tryLock: unknown = typeof loaded === 'object' && loaded !== null ? Reflect.get(loaded, 'tryLockExclusive') : undefined;
  if (typeof tryLock !== 'function') throw notBuilt(`${file} does not export tryLockExclusive(): rebuild it`);
  return {
    peerCred: (fd) => Reflect.apply(peerCred, undefined, [fd]),
    tryLockExclusive: (fd) => Reflect.apply(tryLock, undefined, [fd]),
  };
}

let addon: Addon | undefined;

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}

/** SO_PEERCRED of a connected Unix socket given by file descriptor. */
export function peerCredentialsFromFd(fd: number): PeerCredentials {
  addon ??= loadPeerCredAddon();
  let raw: unknown;
  try {
    raw = addon.peerCred(fd);
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
function socketFd(socket: Socket): number | undefined {
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

/** flock(fd, LOCK_EX | LOCK_NB): true when the lock is now ours, false when someone else holds it. */
export function tryLockExclusive(fd: number): boolean {
  addon ??= loadPeerCredAddon();
  const result = addon.tryLockExclusive(fd);
  if (typeof result !== 'boolean') throw new Error('tryLockExclusive returned a non-boolean');
  return result;
}
