/**
 * The per-uid locks that every helper process on the host (the socket helper and any pkexec
 * helpers) shares: flock on `<state dir>/ledger/<uid>.lock` (records/ledger.ts). A helper holds
 * a uid's lock from counting that uid's taps until the taps it makes are in the ledger, so that
 * concurrent requests cannot together exceed the user's max-taps. One lock per uid: a helper
 * that is stopped while it holds one (^Z on a pkexec helper) blocks that user only. Never waited
 * for inside a batch: a request whose user's lock is taken waits for it on its own
 * (requests/service.ts). The kernel releases a lock when its helper dies.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { addon } from '../native/addon.js';

/** flock(fd, LOCK_EX | LOCK_NB): true when the lock is now ours, false when someone else holds it. */
function tryLockExclusive(fd: number): boolean {
  const result = addon().tryLockExclusive(fd);
  if (typeof result !== 'boolean') throw new Error('tryLockExclusive returned a non-boolean');
  return result;
}

/**
 * Takes the lock on `path` (created 0600 if missing; a symlink there is refused) without
 * waiting: its release, or undefined when another open file holds it (in this process too).
 */
export function tryLockFile(path: string): (() => void) | undefined {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    if (!tryLockExclusive(fd)) {
      closeSync(fd);
      return undefined;
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
