/**
 * Where the package's built native addons are: both the helper (helper/src/native/addon.ts) and
 * the client (client/src/native/fdpass.ts) load theirs from helper/native/build/Release, found
 * from the package root.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const PACKAGE_NAME = 'xkvm';

/** The directory node-gyp builds both addons into, relative to the package root. */
export const ADDONS_FROM_ROOT = ['helper', 'native', 'build', 'Release'] as const;

/**
 * The package root: the nearest directory at or above `start` whose package.json is named
 * "xkvm". Works from the sources, the build (dist/...) and the client's bundle (dist/bin).
 */
export function findPackageRoot(start: string): string | undefined {
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
