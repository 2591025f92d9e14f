/**
 * A lock shared by every helper process on the host (the socket helper and any pkexec
 * helpers): flock on a file in the state directory. Held from the max-taps count until the
 * taps exist, so concurrent requests cannot together exceed a user's limit. The kernel releases
 * it if a helper dies.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { addon } from '../native/addon.js';

const POLL_MS = 5;

/** flock(fd, LOCK_EX | LOCK_NB): true when the lock is now ours, false when someone else holds it. */
function tryLockExclusive(fd: number): boolean {
  const result = addon().tryLockExclusive(fd);
  if (typeof result !== 'boolean') throw new Error('tryLockExclusive returned a non-boolean');
  return result;
}

export async function hostLock(path: string, deadlineMs = 10_000): Promise<() => void> {
  const fd = openSync(path, 'a', 0o600);
  const end = Date.now() + deadlineMs;
  try {
    while (!tryLockExclusive(fd)) {
      if (Date.now() > end) {
        throw new ProtocolError(ErrorCode.SystemError, `another helper held ${path} for more than ${deadlineMs / 1000} s; try again`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  let released = false;
  return () => {
    if (!released) closeSync(fd);
    released = true;
  };
}

export function quotaLockPath(stateDir: string): string {
  return join(stateDir, 'quota.lock');
}
