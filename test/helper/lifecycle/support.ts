/** Shared by the lifecycle suites: root check, the ordinary test users, and /dev/net/tun for them. */
import { chmodSync, statSync } from 'node:fs';
import { ensureTestUser, sweepStaleNetns, type TestUser } from '../../support/netns.js';

export const USER_NAMES = ['xkvmlc-a', 'xkvmlc-b', 'xkvmlc-c'] as const;

export function requireRoot(): void {
  if (process.geteuid?.() !== 0) {
    throw new Error('the lifecycle suites must run as root: they start the helper, create namespaces and run clients as ordinary users');
  }
}

/** The three ordinary users (created if missing), after removing stale namespaces of dead runs. */
export function setUp(): TestUser[] {
  requireRoot();
  sweepStaleNetns();
  return USER_NAMES.map((n) => ensureTestUser(n));
}

/** Ordinary users running qemu (or `ip tuntap del`) need /dev/net/tun 0666, as most distributions ship it. */
export function openTun(): void {
  if ((statSync('/dev/net/tun').mode & 0o666) !== 0o666) chmodSync('/dev/net/tun', 0o666);
}
