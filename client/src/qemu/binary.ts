/** Find the qemu binary on PATH (or as given), so a missing one names its Debian package. */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ClientError } from '../errors.js';

function findExecutable(name: string, pathEnv = process.env['PATH'] ?? ''): string | undefined {
  const candidates = name.includes('/') ? [name] : pathEnv.split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function requireQemu(name: string, debianPackage: string | undefined): string {
  const found = findExecutable(name);
  if (found !== undefined) return found;
  if (name.includes('/')) throw new ClientError('NO_QEMU', `${name} does not exist or is not executable: check --kvm`);
  const hint = debianPackage === undefined
    ? 'check the name given with --kvm, or give a path'
    : `install it with: apt-get install ${debianPackage}`;
  throw new ClientError('NO_QEMU', `${name} is not installed (not found on PATH): ${hint}`);
}
