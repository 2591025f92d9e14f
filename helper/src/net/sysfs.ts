import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isValidIfname } from '../../../shared/src/protocol/names.js';
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

/** Whether `name` exists, is a tap, and who owns it, from /sys/class/net/NAME/{tun_flags,owner,group}. */
export function tapInfo(name: string): TapInfo {
  checkIfname(name, 'tap');
  if (!existsSync(`${SYS_NET}/${name}`)) return { exists: false, isTap: false };
  const flags = readAttr(name, 'tun_flags');
  const isTap = flags !== undefined && /^0x[0-9a-f]+$/i.test(flags) && (Number(flags) & IFF_TAP) !== 0;
  if (!isTap) return { exists: true, isTap: false };
  const owner = idAttr(name, 'owner');
  const group = idAttr(name, 'group');
  return {
    exists: true,
    isTap: true,
    ...(owner === undefined ? {} : { owner }),
    ...(group === undefined ? {} : { group }),
  };
}

/**
 * How many tap devices each uid owns right now (every helper's taps count, persistent ones too),
 * leaving out the names in `except`. One pass over /sys/class/net: `owner` exists only for
 * tun/tap devices, so most devices cost one failed read.
 */
export function tapCounts(except: ReadonlySet<string> = new Set()): Map<number, number> {
  const counts = new Map<number, number>();
  for (const name of readdirSync(SYS_NET)) {
    if (except.has(name) || !isValidIfname(name)) continue;
    const owner = idAttr(name, 'owner');
    if (owner === undefined) continue;
    const flags = readAttr(name, 'tun_flags');
    if (flags === undefined || !/^0x[0-9a-f]+$/i.test(flags) || (Number(flags) & IFF_TAP) === 0) continue;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  return counts;
}
