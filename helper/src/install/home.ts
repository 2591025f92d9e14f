import { realpathSync } from 'node:fs';

/** What ProtectHome=yes hides from a service (systemd.exec(5)). */
const HOME_DIRS = ['/home', '/root', '/run/user'] as const;

/**
 * The paths among `paths` (after resolving symlinks) that ProtectHome=yes would hide. When the
 * helper's code or node is among them the service gets ProtectHome=read-only instead.
 */
export function underHome(paths: readonly string[]): string[] {
  return paths.filter((p) => {
    let real = p;
    try {
      real = realpathSync(p);
    } catch {
      // judge the path as written
    }
    return [p, real].some((q) => HOME_DIRS.some((h) => q === h || q.startsWith(`${h}/`)));
  });
}
