/**
 * The helper's native addon (helper/native: SO_PEERCRED and flock, which Node has no API for),
 * found from the package root and loaded once, on first use.
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
  const peerCred: unknown = typeof loaded === 'object' && loaded !== null ? Reflect.get(loaded, 'peerCred') : undefined;
  if (typeof peerCred !== 'function') throw notBuilt(`${file} does not export peerCred()`);
  const tryLock: unknown = typeof loaded === 'object' && loaded !== null ? Reflect.get(loaded, 'tryLockExclusive') : undefined;
  if (typeof tryLock !== 'function') throw notBuilt(`${file} does not export tryLockExclusive(): rebuild it`);
  return {
    peerCred: (fd) => Reflect.apply(peerCred, undefined, [fd]),
    tryLockExclusive: (fd) => Reflect.apply(tryLock, undefined, [fd]),
  };
}

let loaded: Addon | undefined;

/** The addon, loaded on first use. */
export function addon(): Addon {
  loaded ??= loadAddon();
  return loaded;
}
