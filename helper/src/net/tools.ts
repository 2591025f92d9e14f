import { accessSync, constants } from 'node:fs';
import { NetError } from './errors.js';

export { TOOL_ENV } from '../defaults.js';

/**
 * The programs this layer runs, by absolute path only (never a PATH search), and the fixed
 * environment they get. Debian 12 ships ip as /bin/ip and /sbin/ip; with its merged /usr those
 * are /usr/bin/ip and /usr/sbin/ip. Other distributions have /usr/sbin/ip. The first of these
 * fixed candidates that exists wins.
 */
const IP_CANDIDATES = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'] as const;
/** iproute2's bridge(8), found the same way (Debian 12: /sbin/bridge, /usr/sbin/bridge). */
const BRIDGE_CANDIDATES = ['/usr/sbin/bridge', '/sbin/bridge', '/usr/bin/bridge', '/bin/bridge'] as const;
export const OVS_VSCTL = '/usr/bin/ovs-vsctl';


/** Kill an `ip` run after this long (100 taps take ~80 ms). */
export const IP_TIMEOUT_MS = 10_000;
/** ovs-vsctl's own --timeout (seconds): it waits for ovs-vswitchd to apply a change. */
export const OVS_VSCTL_TIMEOUT_S = 10;
/** Kill an ovs-vsctl run after this long (a little more than its own timeout). */
export const OVS_TIMEOUT_MS = (OVS_VSCTL_TIMEOUT_S + 2) * 1000;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const found = new Map<string, string>();

/** The first executable of `candidates` (remembered); a SYSTEM_ERROR naming `what` when none exists. */
function firstOf(what: string, candidates: readonly string[]): string {
  const key = candidates.join(':');
  let path = found.get(key);
  if (path === undefined) {
    path = candidates.find(executable);
    if (path === undefined) throw new NetError('SYSTEM_ERROR', `${what} (iproute2) is not installed: none of ${candidates.join(', ')} exists`);
    found.set(key, path);
  }
  return path;
}

/** The absolute path of ip(8); a SYSTEM_ERROR when none of the candidates exists. */
export function ipTool(): string {
  return firstOf('ip', IP_CANDIDATES);
}

/** The absolute path of bridge(8) (Linux bridge VLANs); a SYSTEM_ERROR when none of the candidates exists. */
export function bridgeTool(): string {
  return firstOf('bridge', BRIDGE_CANDIDATES);
}

/** Whether Open vSwitch's ovs-vsctl is installed (checked each time: it may be installed later). */
export function ovsInstalled(): boolean {
  return executable(OVS_VSCTL);
}
