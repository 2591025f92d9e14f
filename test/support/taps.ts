/**
 * The tun/tap devices of a network namespace, in one `ip -d -j link show` (a few ms, cheap
 * enough to poll): name, owner (ip prints the user name, or the uid when it has no name),
 * bridge, whether it is up and whether something (qemu) holds it (LOWER_UP, no NO-CARRIER).
 */
import type { Netns } from './netns.js';

export interface TunDevice {
  readonly name: string;
  readonly type: string | undefined;
  /** As ip prints it: a user name, or a uid; undefined when the tap has no owner. */
  readonly owner: string | undefined;
  readonly group: string | undefined;
  readonly persist: boolean;
  readonly master: string | undefined;
  readonly up: boolean;
  /** A process has the tap open (qemu, or a tuntap fd). */
  readonly attached: boolean;
}

interface IpLink {
  ifname: string;
  flags?: string[];
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string; user?: string | number; group?: string | number; persist?: boolean } };
}

export function tunDevices(ns: Netns): Map<string, TunDevice> {
  const links = JSON.parse(ns.ip('-d', '-j', 'link', 'show')) as IpLink[];
  const out = new Map<string, TunDevice>();
  for (const l of links) {
    if (l.linkinfo?.info_kind !== 'tun') continue;
    const data = l.linkinfo.info_data ?? {};
    const flags = l.flags ?? [];
    out.set(l.ifname, {
      name: l.ifname,
      type: data.type,
      owner: data.user === undefined ? undefined : String(data.user),
      group: data.group === undefined ? undefined : String(data.group),
      persist: data.persist === true,
      master: l.master,
      up: flags.includes('UP'),
      attached: flags.includes('LOWER_UP') && !flags.includes('NO-CARRIER'),
    });
  }
  return out;
}

/** The taps the helper made (its names start with `xkvm`). */
export function helperTaps(ns: Netns): TunDevice[] {
  return [...tunDevices(ns).values()].filter((d) => d.name.startsWith('xkvm')).sort((a, b) => a.name.localeCompare(b.name));
}

/** Which of `names` still exist in the namespace. */
export function present(ns: Netns, names: readonly string[]): string[] {
  const all = new Set(JSON.parse(ns.ip('-j', 'link', 'show')).map((l: { ifname: string }) => l.ifname) as string[]);
  return names.filter((n) => all.has(n));
}
