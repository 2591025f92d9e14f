/**
 * Interface names (bridges and taps) as the helper accepts them: 1–15 bytes (IFNAMSIZ - 1),
 * letters, digits, '_', '.', '-', never starting with '-' or '.', never "." or "..".
 * This is deliberately narrower than what the kernel accepts.
 */
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

export const IFNAME_RULE =
  '1 to 15 characters from A-Z a-z 0-9 _ . -, not starting with "-" or "."';

export function isValidIfname(name: unknown): name is string {
  return typeof name === 'string' && IFNAME.test(name);
}

/** Why `name` is not a valid interface name, or undefined if it is. */
export function ifnameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `expected a string, got ${describeType(name)}`;
  if (IFNAME.test(name)) return undefined;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return 'it is empty';
  if (bytes > 15) return `it is ${bytes} bytes long (at most 15)`;
  return `it must be ${IFNAME_RULE}`;
}

export function describeType(value: unknown): string {
  if (value === undefined) return 'nothing (the key is missing)';
  if (value === null) return 'nil';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Map) return 'a map';
  if (value instanceof Uint8Array) return 'binary data';
  return `a ${typeof value}`;
}
