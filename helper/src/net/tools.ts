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
export const OVS_VSCTL = '/usr/bin/ovs-vsctl';
/** bridge(8) of iproute2, for port locking (maclock.ts) and Linux VLANs (vlan.ts): the first of these that exists. */
const BRIDGE_CANDIDATES = ['/usr/sbin/bridge', '/sbin/bridge', '/usr/bin/bridge', '/bin/bridge'] as const;
/** Open vSwitch's OpenFlow tool, for the flows of a mac-locked OVS port (ovsflows.ts). */
export const OVS_OFCTL = '/usr/bin/ovs-ofctl';


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

/** The first of each tool's candidates that exists, once found. */
const found = new Map<string, string>();

/** The first executable of `candidates`; a SYSTEM_ERROR naming them when none exists. */
function firstOf(candidates: readonly string[], what: string): string {
  const known = found.get(what);
  if (known !== undefined) return known;
  const path = candidates.find(executable);
  if (path === undefined) throw new NetError('SYSTEM_ERROR', `${what} is not installed: none of ${candidates.join(', ')} exists`);
  found.set(what, path);
  return path;
}

/** The absolute path of ip(8); a SYSTEM_ERROR when none of the candidates exists. */
export function ipTool(): string {
  return firstOf(IP_CANDIDATES, 'ip (iproute2)');
}

/** The absolute path of bridge(8); a SYSTEM_ERROR when none of the candidates exists. */
export function bridgeTool(): string {
  return firstOf(BRIDGE_CANDIDATES, 'bridge (iproute2)');
}

/** Whether Open vSwitch's ovs-ofctl is installed (checked each time). */
export function ofctlInstalled(): boolean {
  return executable(OVS_OFCTL);
}

/** Whether Open vSwitch's ovs-vsctl is installed (checked each time: it may be installed later). */
export function ovsInstalled(): boolean {
  return executable(OVS_VSCTL);
}
