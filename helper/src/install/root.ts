import { InstallError } from './errors.js';

/** Refuse unless the effective uid is 0 (`uid` stands in for geteuid() in tests). */
export function requireRoot(command: 'install' | 'uninstall', uid: number | undefined = process.geteuid?.()): void {
  if (uid !== 0) {
    throw new InstallError('INSTALL_NOT_ROOT',
      `xkvm-helper ${command} must run as root (effective uid is ${uid ?? 'unknown'}); expected e.g. sudo xkvm-helper ${command}`);
  }
}
