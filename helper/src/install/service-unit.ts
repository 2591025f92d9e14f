import { checkedPath } from './checks.js';
import { InstallError } from './errors.js';
import { GENERATED_MARKER } from './marker.js';
import type { InstallPaths } from './paths.js';
import { unitWord } from './unit-quote.js';

export interface ServiceUnitOptions {
  readonly paths: InstallPaths;
  readonly nodePath: string;
  readonly helperMain: string;
  /** `read-only` when the helper's code or node lives under /home, /root or /run/user. */
  readonly protectHome: 'yes' | 'read-only';
}

/**
 * xkvm-helper.service, started by the socket (fd 3, LISTEN_FDS); the helper exits by itself
 * when idle. Root with CAP_NET_ADMIN only: that alone lets `ip tuntap add ... user UID` (TUNSETIFF,
 * TUNSETOWNER), `ip link set ... master/up` and `ip tuntap del` work (checked with
 * `setpriv --bounding-set=-all,+net_admin`); /dev/net/tun is root's own file and needs no
 * DAC override; ovs-vsctl only talks to ovsdb over a Unix socket. Address families seen under
 * strace: ip uses AF_NETLINK, ovs-vsctl and node (sockets, child pipes) AF_UNIX.
 */
export function renderServiceUnit(o: ServiceUnitOptions): string {
  if (/["'\\]/.test(o.nodePath)) {
    throw new InstallError('INSTALL_BAD_PATH',
      `the node binary ${JSON.stringify(o.nodePath)} has a quote or backslash, which systemd refuses in an executable's name; expected a plain path`);
  }
  const exec = `${unitWord(checkedPath(o.nodePath, 'the node binary'), 'executable')} ` +
    unitWord(checkedPath(o.helperMain, "the helper's main module"), 'argument');
  const runDir = unitWord(checkedPath(o.paths.runDir, 'the run directory'), 'path');
  const logDir = unitWord(`-${checkedPath(o.paths.logDir, 'the log directory')}`, 'path');
  const socketUnit = 'xkvm-helper.socket';
  return [
    `# ${GENERATED_MARKER}; removed by \`xkvm-helper uninstall\`. Do not edit: install`,
    '# rewrites it. Change settings with `systemctl edit xkvm-helper.service` (a drop-in).',
    '[Unit]',
    'Description=xkvm helper (creates taps on bridges for unprivileged qemu, per /etc/xkvm/helper.conf)',
    `Requires=${socketUnit}`,
    `After=${socketUnit}`,
    '',
    '[Service]',
    'Type=simple',
    '# No --config: the helper reads /etc/xkvm/helper.conf.',
    `ExecStart=${exec}`,
    '# The helper exits by itself when idle; the socket starts it again on the next connection.',
    '# A restarted helper keeps live sessions\' taps and reaps those of clients that died.',
    'Restart=on-failure',
    '',
    '# Root, but only CAP_NET_ADMIN: enough to create a tap owned by a user, bring it up, attach',
    '# it to a bridge and delete it. Nothing to raise for a root service, so no ambient set.',
    'CapabilityBoundingSet=CAP_NET_ADMIN',
    'AmbientCapabilities=',
    'NoNewPrivileges=yes',
    '',
    '# Read-only file system except session state and the supported audit-log place. An',
    '# audit-log elsewhere needs ReadWritePaths=DIR in a drop-in. ovsdb\'s socket needs no entry:',
    '# read-only mounts do not stop connect() on Unix sockets (systemd.exec(5)).',
    'ProtectSystem=strict',
    'PrivateMounts=yes',
    `ReadWritePaths=${runDir} ${logDir}`,
    o.protectHome === 'yes'
      ? 'ProtectHome=yes'
      : '# The helper\'s code (or node) lives under /home, /root or /run/user: hide nothing there.\nProtectHome=read-only',
    'PrivateTmp=yes',
    '# Session state and audit logs are root\'s business only.',
    'UMask=0077',
    '',
    '# Only the tun device (pseudo devices like /dev/null stay). Not PrivateDevices=: it would',
    '# hide /dev/net/tun.',
    'DevicePolicy=closed',
    'DeviceAllow=/dev/net/tun rw',
    '',
    '# Bridges and taps are configured over netlink, never through /proc/sys or /sys.',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    '# AF_NETLINK for ip, AF_UNIX for ovs-vsctl, getent and node itself; no IP traffic at all.',
    '# If users come from an NSS module that talks to the network itself (not sssd or nslcd),',
    '# add AF_INET AF_INET6 and an IPAddressAllow= for its servers in a drop-in.',
    'RestrictAddressFamilies=AF_UNIX AF_NETLINK',
    'IPAddressDeny=any',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'SystemCallArchitectures=native',
    '# Every system call node, ip, ovs-vsctl and getent made under strace while serving a socket,',
    '# making, bridging and deleting taps is in @system-service but pkey_alloc (V8), hence @pkey.',
    '# Anything else fails with EPERM instead of killing the helper mid-session.',
    'SystemCallFilter=@system-service @pkey',
    'SystemCallFilter=~@privileged',
    'SystemCallErrorNumber=EPERM',
    '',
    '# Deliberately not set:',
    '#   MemoryDenyWriteExecute=  breaks V8\'s JIT (node needs writable+executable memory).',
    '#   PrivateNetwork=          the helper configures the host\'s network.',
    '#   PrivateUsers=            CAP_NET_ADMIN would apply to a new user namespace, not the host.',
    '#   ProtectProc=invisible    the helper reads /proc/PID/stat of its clients (other users).',
    '',
  ].join('\n');
}
