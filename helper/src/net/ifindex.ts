import { readFileSync } from 'node:fs';
import { checkIfname } from './validate.js';

/*
 * Interface indexes, which the helper's ledger keys taps by (records/ledger.ts): a device name
 * can be freed and taken again, an ifindex is not handed out twice while the kernel counts up
 * to 2^31. Read from /sys (this namespace's view), without spawning anything.
 */

const INDEX = /^[1-9][0-9]{0,9}$/;

/** The interface index of the device named `name` now; undefined when no device has that name. */
export function ifindexOf(name: string): number | undefined {
  checkIfname(name, 'device');
  let text: string;
  try {
    text = readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim();
  } catch {
    return undefined;
  }
  return INDEX.test(text) ? Number(text) : undefined;
}
