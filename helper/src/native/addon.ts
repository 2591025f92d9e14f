/**
 * The helper's native addon (helper/native: SO_PEERCRED, flock, leaving the terminal's job
 * control, Unix datagrams for the system log; Node has no API for any of them), found from the
 * package root and loaded once, on first use.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CodedError } from '../../../shared/src/errors/coded-error.js';

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
}

const PACKAGE_NAME = 'xkvm';
const ADDON_FROM_ROOT = ['helper', 'native', 'build', 'Release', 'peercred.node'] as const;

/**
 * The package root: the nearest directory at or above `start` whose package.json is named
 * "xkvm". Works from the sources (helper/src/native) and the build (dist/helper/src/native).
 */
function findPackageRoot(start: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
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

/**
 * Where the built addon is expected, or undefined when the package root cannot be found.
 * @internal Exported for tests: they load the built addon from there.
 */
export function defaultAddonPath(): string | undefined {
  const root = findPackageRoot();
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
  return {
    peerCred: (fd) => peerCred(fd),
    tryLockExclusive: (fd) => tryLock(fd),
    leaveTerminal: () => leaveTerminal(),
    sendDatagram: (path, data) => sendDatagram(path, data),
  };
}

let loaded: Addon | undefined;

/** The addon, loaded on first use. */
export function addon(): Addon {
  loaded ??= loadAddon();
  return loaded;
}
