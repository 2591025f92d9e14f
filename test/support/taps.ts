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

/** As the tap's owner: attach to it (TUNSETIFF) and give it to another uid (TUNSETOWNER, which needs no privilege). */
const GIVE_AWAY = `
import fcntl, os, struct, sys
TUNSETIFF, TUNSETOWNER = 0x400454ca, 0x400454cc
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', sys.argv[1].encode(), IFF_TAP | IFF_NO_PI))
fcntl.ioctl(fd, TUNSETOWNER, int(sys.argv[2]))
os.close(fd)
`;

/** `owner` gives `tap` to `uid` with the kernel's own ioctls, as any tap owner can; throws when that fails. */
export function giveTapAway(ns: Netns, owner: string, tap: string, uid: number): void {
  const r = ns.exec(['/usr/bin/python3', '-c', GIVE_AWAY, tap, String(uid)], { user: owner, openTun: true });
  if (r.status !== 0) throw new Error(`TUNSETOWNER as ${owner}: ${r.stderr}`);
}
