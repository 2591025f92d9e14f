import { join } from 'node:path';
import { DEFAULT_POLICY_FILE } from '../defaults.js';

/**
 * Every path `xkvm-helper install` writes, removes or names in what it writes. The defaults
 * are the real system paths; tests use `pathsUnder(root)`.
 */
export interface InstallPaths {
  /** The program polkit's action names (pkexec runs it); the client's INSTALLED_HELPER. */
  readonly launcher: string;
  /** xkvm-bridge-helper's launcher, for qemu's helper= and libvirt's bridge_helper (run by users). */
  readonly bridgeLauncher: string;
  /** The polkit action file. */
  readonly action: string;
  /** The polkit rule written with `--group`. */
  readonly rule: string;
  readonly socketUnit: string;
  readonly serviceUnit: string;
  /** The symlink `systemctl enable xkvm-helper.socket` makes (uninstall removes it). */
  readonly socketEnableLink: string;
  /** The policy file; written only if none exists. */
  readonly config: string;
  /** Where the helper keeps session state and systemd puts the socket (named in the units). */
  readonly runDir: string;
  /** The listening socket (named in the socket unit; the client's INSTALLED_SOCKET). */
  readonly socket: string;
  /** The supported place for `audit-log` files (writable in the service's sandbox). */
  readonly logDir: string;
  /** Exists when systemd is PID 1 (sd_booted(3) checks the same directory). */
  readonly systemdRunning: string;
}

export const DEFAULT_PATHS: InstallPaths = {
  launcher: '/usr/local/libexec/xkvm/xkvm-helper',
  bridgeLauncher: '/usr/local/libexec/xkvm/xkvm-bridge-helper',
  action: '/usr/share/polkit-1/actions/org.xkvm.helper.policy',
  rule: '/etc/polkit-1/rules.d/50-xkvm-helper.rules',
  socketUnit: '/etc/systemd/system/xkvm-helper.socket',
  serviceUnit: '/etc/systemd/system/xkvm-helper.service',
  socketEnableLink: '/etc/systemd/system/sockets.target.wants/xkvm-helper.socket',
  config: DEFAULT_POLICY_FILE,
  runDir: '/run/xkvm',
  socket: '/run/xkvm/helper.sock',
  logDir: '/var/log/xkvm',
  systemdRunning: '/run/systemd/system',
};

/**
 * The default paths with `root` in front of each: an install into a scratch tree.
 * @internal For tests: the helper always installs to DEFAULT_PATHS.
 */
export function pathsUnder(root: string): InstallPaths {
  const entries = Object.entries(DEFAULT_PATHS).map(([key, path]) => [key, join(root, path)]);
  return Object.fromEntries(entries) as unknown as InstallPaths;
}
