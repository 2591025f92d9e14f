import { randomBytes } from 'node:crypto';

/** Lower-case RFC 4648 base32 alphabet. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const TAP_PREFIX = 'xkvm';

/**
 * `xkvm` + 8 base32 characters from 40 random bits: 12 bytes, within IFNAMSIZ. Uniqueness is
 * not checked here (that would race): `ip tuntap add` refuses an existing name and the caller
 * retries with another one.
 */
export function randomTapName(): string {
  const bytes = randomBytes(5);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = '';
  for (let i = 7; i >= 0; i -= 1) out += ALPHABET[Number((bits >> BigInt(i * 5)) & 31n)];
  return TAP_PREFIX + out;
}
