/**
 * MAC addresses the reference's way: a partial MAC is the tail of the address, the head comes
 * from 52:54:00:12:34 (qemu's locally administered prefix); an empty one is the netdev's index;
 * `random` keeps 52:54:00 and draws the last three octets.
 */
import { ClientError } from '../errors.js';
import { crypto } from '../lazy.js';

const MAC_PREFIX = ['52', '54', '00', '12', '34'] as const;
const OCTET = /^[0-9A-Fa-f]{1,2}$/;

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Complete `partial` (e.g. ":05", "12:34:56", "", a full MAC) into six octets. */
export function padMac(partial: string, index: number): string {
  const text = partial === '' ? hex(index) : partial;
  // Like the reference, colons separate and empty pieces vanish (":05" is "05").
  const octets = text.split(':').filter((piece) => piece !== '');
  if (octets.length === 0 || octets.length > 6 || !octets.every((o) => OCTET.test(o))) {
    throw new ClientError(
      'BAD_MAC',
      `bad MAC address '${partial}': expected 1 to 6 hex octets separated by ':' ` +
        `(missing leading octets come from ${MAC_PREFIX.join(':')}), or auto, or random`,
    );
  }
  const head = MAC_PREFIX.slice(0, 6 - octets.length);
  return [...head, ...octets].map((o) => hex(parseInt(o, 16))).join(':');
}

export function randomMac(random: (n: number) => Buffer = (n) => crypto().randomBytes(n)): string {
  const tail = [...random(3)].map(hex).join(':');
  return padMac(tail, 0);
}
