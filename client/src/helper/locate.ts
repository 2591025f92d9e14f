/**
 * Where the helper is, in the contract's order: $XKVM_HELPER_SOCKET, else the installed socket
 * /run/xkvm/helper.sock, else `pkexec <installed helper> --stdio`.
 */
import { existsSync } from 'node:fs';

/** @internal Exported for the test that the helper installs its socket there. */
export const INSTALLED_SOCKET = '/run/xkvm/helper.sock';
/** Where `xkvm-helper install` puts the program polkit's action names. */
export const INSTALLED_HELPER = '/usr/local/libexec/xkvm/xkvm-helper';
const PKEXEC = '/usr/bin/pkexec';
/** The polkit action pkexec checks for the installed helper (install's action file; a test ties the two). */
export const POLKIT_ACTION = 'org.xkvm.helper.run';

export type HelperLocation =
  | { kind: 'socket'; path: string; from: 'XKVM_HELPER_SOCKET' | 'installed' }
  | { kind: 'pkexec'; pkexec: string; helper: string }
  | { kind: 'none'; why: string };

export function locateHelper(env: NodeJS.ProcessEnv = process.env, exists: (p: string) => boolean = existsSync): HelperLocation {
  const fromEnv = env['XKVM_HELPER_SOCKET'];
  if (fromEnv !== undefined && fromEnv !== '') return { kind: 'socket', path: fromEnv, from: 'XKVM_HELPER_SOCKET' };
  if (exists(INSTALLED_SOCKET)) return { kind: 'socket', path: INSTALLED_SOCKET, from: 'installed' };
  if (exists(PKEXEC) && exists(INSTALLED_HELPER)) return { kind: 'pkexec', pkexec: PKEXEC, helper: INSTALLED_HELPER };
  return {
    kind: 'none',
    why:
      `no xkvm helper is installed (no ${INSTALLED_SOCKET}, no ${INSTALLED_HELPER}): bridged networking needs an admin to run ` +
      '`xkvm-helper install [--group GROUP]` as root and allow you in /etc/xkvm/helper.conf; --netdev user needs no helper',
  };
}
