/** How many tap devices a uid owns right now, from /sys/class/net (every helper's taps count). */
import { readdirSync, readFileSync } from 'node:fs';

const IFF_TAP = 0x0002;

export function tapsOwnedBy(uid: number, sysNet = '/sys/class/net'): number {
  let count = 0;
  for (const name of readdirSync(sysNet)) {
    try {
      const flags = parseInt(readFileSync(`${sysNet}/${name}/tun_flags`, 'utf8'), 16);
      if ((flags & IFF_TAP) === 0) continue;
      if (Number(readFileSync(`${sysNet}/${name}/owner`, 'utf8').trim()) === uid) count += 1;
    } catch {
      // not a tun/tap device, or gone meanwhile
    }
  }
  return count;
}
