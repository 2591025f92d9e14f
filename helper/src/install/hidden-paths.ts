import { realpathSync } from 'node:fs';

/** What ProtectHome=yes hides from a service (systemd.exec(5)). */
const HOME_DIRS = ['/home', '/root', '/run/user'] as const;

/** What PrivateTmp=yes replaces with an empty folder of the service's own (systemd.exec(5)). */
const TMP_DIRS = ['/tmp', '/var/tmp'] as const;

/** `paths` as written and with symlinks resolved (a path that cannot be resolved is judged as written). */
function spellings(path: string): string[] {
  try {
    return [path, realpathSync(path)];
  } catch {
    return [path];
  }
}

function within(paths: readonly string[], dirs: readonly string[]): string[] {
  return paths.filter((p) => spellings(p).some((q) => dirs.some((d) => q === d || q.startsWith(`${d}/`))));
}

/**
 * The paths among `paths` (after resolving symlinks) that ProtectHome=yes would hide. When the
 * helper's code or node is among them the service gets ProtectHome=read-only instead.
 */
export function underHome(paths: readonly string[]): string[] {
  return within(paths, HOME_DIRS);
}

/**
 * The paths among `paths` (after resolving symlinks) that PrivateTmp=yes hides: the service
 * would see an empty /tmp and crash-loop with "Cannot find module". Install refuses these (a
 * helper that needs /tmp to run is not a service to relax the unit for).
 */
export function underTmp(paths: readonly string[]): string[] {
  return within(paths, TMP_DIRS);
}
