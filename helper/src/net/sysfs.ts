import { existsSync, readFileSync } from 'node:fs';
import { checkIfname } from './validate.js';

/*
 * What /sys/class/net says about a device, without spawning anything. Under
 * `ip netns exec NS` this is NS's view (ip remounts /sys there).
 */

const SYS_NET = '/sys/class/net';
/** IFF_TAP in tun_flags (include/uapi/linux/if_tun.h). */
const IFF_TAP = 0x0002;

export interface TapInfo {
  readonly exists: boolean;
  /** Whether it is a tun/tap device in tap mode. */
  readonly isTap: boolean;
  /** Owner uid, absent when none is set (-1). */
  readonly owner?: number;
  /** Group gid, absent when none is set (-1). */
  readonly group?: number;
}

/** A Linux bridge is a device with a `bridge` directory. */
export function isLinuxBridge(name: string): boolean {
  return existsSync(`${SYS_NET}/${checkIfname(name, 'bridge')}/bridge`);
}

export function deviceExists(name: string): boolean {
  return existsSync(`${SYS_NET}/${checkIfname(name, 'device')}`);
}

function readAttr(name: string, attr: string): string | undefined {
  try {
    return readFileSync(`${SYS_NET}/${name}/${attr}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function idAttr(name: string, attr: string): number | undefined {
  const text = readAttr(name, attr);
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) return undefined; // "-1": none
  return Number(text);
}

/** A non-negative integer attribute (a master's ifindex, netdev_group), or undefined. */
function numberAttr(path: string): number | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^[0-9]{1,10}$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** The interface index of the device `name` is attached to (its `master`), or undefined when none. */
export function masterIndexOf(name: string): number | undefined {
  return numberAttr(`${SYS_NET}/${checkIfname(name, 'device')}/master/ifindex`);
}

/** The MTU of `name` (/sys/class/net/NAME/mtu), or undefined when there is no such device. */
export function mtuOf(name: string): number | undefined {
  return numberAttr(`${SYS_NET}/${checkIfname(name, 'device')}/mtu`);
}

/** The interface group of `name` (`ip link set … group G`), or undefined when there is no such device. */
export function groupOf(name: string): number | undefined {
  return numberAttr(`${SYS_NET}/${checkIfname(name, 'device')}/netdev_group`);
}

/** Whether `name` is a tun/tap device in tap mode (its tun_flags has IFF_TAP). */
function inTapMode(name: string): boolean {
  const flags = readAttr(name, 'tun_flags');
  return flags !== undefined && /^0x[0-9a-f]+$/i.test(flags) && (Number(flags) & IFF_TAP) !== 0;
}

/** Whether `name` exists, is a tap, and who owns it, from /sys/class/net/NAME/{tun_flags,owner,group}. */
export function tapInfo(name: string): TapInfo {
  checkIfname(name, 'tap');
  if (!existsSync(`${SYS_NET}/${name}`)) return { exists: false, isTap: false };
  if (!inTapMode(name)) return { exists: true, isTap: false };
  const owner = idAttr(name, 'owner');
  const group = idAttr(name, 'group');
  return {
    exists: true,
    isTap: true,
    ...(owner === undefined ? {} : { owner }),
    ...(group === undefined ? {} : { group }),
  };
}
