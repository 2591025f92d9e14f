/**
 * The helper's native addon (helper/native: SO_PEERCRED, flock, leaving the terminal's job
 * control, Unix datagrams for the system log, opening taps and sending fds for fd handoff; Node
 * has no API for any of them), found from the package root and loaded once, on first use.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import { ADDONS_FROM_ROOT, PACKAGE_NAME, findPackageRoot } from '../../../shared/src/native/package-root.js';

/**
 * The addon is not built, or not the one this code expects.
 */
export class AddonError extends CodedError<'ADDON_MISSING'> {
  override readonly name = 'AddonError';
}

export interface Addon {
  peerCred(fd: number): unknown;
  tryLockExclusive(fd: number): unknown;
  /** Ignore the terminal's job-control signals, then setsid(): "session", or "group-leader" when setsid() cannot. */
  leaveTerminal(): unknown;
  /** One datagram to the Unix socket at `path`, without waiting; throws an Error with the errno's name as code. */
  sendDatagram(path: string, data: Buffer): unknown;
  /** A non-persistent tap opened `queues` times (O_CLOEXEC), owned by `uid`: {name, fds} (tap.c). */
  openTap(name: string, queues: number, uid: number): unknown;
  /** One non-blocking sendmsg with `fds` as SCM_RIGHTS: bytes sent, 0 on EAGAIN (fdpass.c). */
  sendFds(fd: number, data: Buffer, fds: readonly number[]): unknown;
}

const ADDON_FROM_ROOT = [...ADDONS_FROM_ROOT, 'peercred.node'] as const;

/**
 * Where the built addon is expected, or undefined when the package root cannot be found.
 * @internal Exported for tests: they load the built addon from there.
 */
export function defaultAddonPath(): string | undefined {
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  return root === undefined ? undefined : join(root, ...ADDON_FROM_ROOT);
}

function notBuilt(where: string, cause?: unknown): AddonError {
  return new AddonError(
    'ADDON_MISSING',
    `the helper's native addon is not built (${where}), so socket callers cannot be identified: ` +
      'run `npm rebuild` or `node helper/native/build.mjs` in the xkvm package directory as the ' +
      'user who installed it (it needs g++, make and python3); see helper/native/README.md',
    { cause },
  );
}

/**
 * Loads the addon from `file`; every failure is an AddonError saying how to build it.
 * @internal The helper calls addon(); tests call this with a file that is missing.
 */
export function loadAddon(file: string | undefined = defaultAddonPath()): Addon {
  if (file === undefined) throw notBuilt(`no package.json named "${PACKAGE_NAME}" above ${import.meta.url}`);
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(file);
  } catch (error) {
    throw notBuilt(`cannot load ${file}`, error);
  }
  const fn = (name: string, hint = ''): ((...args: unknown[]) => unknown) => {
    const f: unknown = typeof loaded === 'object' && loaded !== null ? Reflect.get(loaded, name) : undefined;
    if (typeof f !== 'function') throw notBuilt(`${file} does not export ${name}()${hint}`);
    return (...args) => Reflect.apply(f, undefined, args);
  };
  const peerCred = fn('peerCred');
  const tryLock = fn('tryLockExclusive', ': rebuild it');
  const leaveTerminal = fn('leaveTerminal', ': rebuild it');
  const sendDatagram = fn('sendDatagram', ': rebuild it');
  const openTap = fn('openTap', ': rebuild it');
  const sendFds = fn('sendFds', ': rebuild it');
  return {
    peerCred: (fd) => peerCred(fd),
    tryLockExclusive: (fd) => tryLock(fd),
    leaveTerminal: () => leaveTerminal(),
    sendDatagram: (path, data) => sendDatagram(path, data),
    openTap: (name, queues, uid) => openTap(name, queues, uid),
    sendFds: (fd, data, fds) => sendFds(fd, data, fds),
  };
}

let loaded: Addon | undefined;

/** The addon, loaded on first use. */
export function addon(): Addon {
  loaded ??= loadAddon();
  return loaded;
}
