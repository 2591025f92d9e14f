import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { MAX_QUEUES } from '../../../shared/src/protocol/limits.js';
import { ifnameProblem, IFNAME_RULE } from '../../../shared/src/protocol/names.js';
import { ANY_BRIDGE, type Who } from './types.js';

/**
 * Checks for the values a directive takes. Each returns the value or a `Problem`: what was
 * wrong and what was expected, which the caller turns into a `FILE:LINE:` message.
 */
export interface Problem {
  readonly problem: string;
  readonly expected: string;
}

export function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && 'problem' in value;
}

/** Largest `max-taps` N: far above any real need, low enough to catch typos. */
const MAX_TAPS_LIMIT = 4096;
/** `max-taps` when no line sets a default. */
export const DEFAULT_MAX_TAPS = 16;
/**
 * Largest `max-connections` N: the helper's bound on all connections together
 * (transport/slots.ts), which no one user's line can go past.
 */
export const MAX_CONNECTIONS_LIMIT = 1024;
/** `max-connections` when no line sets a default. */
export const DEFAULT_MAX_CONNECTIONS = 16;
/** `max-queues` when no line sets a default (its N is at most MAX_QUEUES, 16). */
export const DEFAULT_MAX_QUEUES = 8;

/**
 * User and group names: letters, digits, `_`, `.`, `@`, `-`, and a final `$` (machine accounts),
 * not starting with `-` or `.`, at most 256 characters, not all digits. `@` inside a name
 * allows sssd's fully qualified names (`alice@example.com`).
 */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,254}\$?$/;
const NAME_RULE = 'letters, digits, _ . @ - (not first: - . @), optionally ending in $';

const WHO_EXPECTED = `a user name, @group or * (names: ${NAME_RULE})`;

function nameProblem(name: string, what: 'user' | 'group'): string | undefined {
  const hint = name.includes('#') ? ' (a comment needs a space or tab before #)' : '';
  if (name === '') return `empty ${what} name`;
  if (/^[0-9]+$/.test(name)) return `${what} "${name}" is a number (policy lines name ${what}s, not ids)`;
  if (!NAME.test(name)) return `bad ${what} name "${name}"${hint}`;
  return undefined;
}

/** WHO: `alice`, `@kvm`, or `*`. */
export function parseWho(word: string): Who | Problem {
  if (word === '*') return { kind: 'anyone' };
  if (word.startsWith('@')) {
    const name = word.slice(1);
    const problem = nameProblem(name, 'group');
    return problem === undefined ? { kind: 'group', name } : { problem, expected: WHO_EXPECTED };
  }
  const problem = nameProblem(word, 'user');
  return problem === undefined ? { kind: 'user', name: word } : { problem, expected: WHO_EXPECTED };
}

/** BRIDGE: an interface name (the same rule as on the wire) or `*`. */
export function parseBridge(word: string): string | Problem {
  if (word === ANY_BRIDGE) return word;
  const problem = ifnameProblem(word);
  if (problem === undefined) return word;
  return { problem: `bad bridge name "${word}": ${problem}`, expected: `a bridge name (${IFNAME_RULE}) or *` };
}

const COUNT_RANGE = { taps: [0, MAX_TAPS_LIMIT], connections: [0, MAX_CONNECTIONS_LIMIT], queues: [1, MAX_QUEUES] } as const;

/**
 * N of `max-taps` (taps, 0 to MAX_TAPS_LIMIT), `max-connections` (connections, 0 to
 * MAX_CONNECTIONS_LIMIT) or `max-queues` (queues per tap, 1 to 16): a plain decimal integer, no
 * sign, no leading zero.
 */
export function parseCount(word: string, of: keyof typeof COUNT_RANGE = 'taps'): number | Problem {
  const [min, max] = COUNT_RANGE[of];
  const expected = `a whole number of ${of} from ${min} to ${max}`;
  if (!/^(0|[1-9][0-9]*)$/.test(word)) return { problem: `"${word}" is not a whole number`, expected };
  const n = Number(word);
  if (n > max) return { problem: `${word} is too large`, expected };
  if (n < min) return { problem: `${word} is too small`, expected };
  return n;
}

/** VID of `vlan`: a VLAN id from 1 to 4094 (0 and 4095 are reserved), plain decimal. */
export function parseVid(word: string): number | Problem {
  const expected = 'a VLAN id from 1 to 4094';
  if (!/^[1-9][0-9]{0,3}$/.test(word) || Number(word) > 4094) return { problem: `"${word}" is not a VLAN id`, expected };
  return Number(word);
}

/**
 * SOCKET of `ovsdb`, as ovs-vsctl's --db takes it: `unix:/ABSOLUTE/PATH`, or `tcp:IP:PORT`
 * (IPv6 in brackets). `ssl:` is refused: the helper passes no key or certificates.
 */
export function parseOvsdb(word: string): string | Problem {
  const expected = 'unix:/ABSOLUTE/PATH or tcp:IP:PORT (e.g. unix:/run/openvswitch/db.sock)';
  if (word.includes(',')) return { problem: `"${word}" lists several databases`, expected };
  if (word.startsWith('unix:')) {
    const path = word.slice('unix:'.length);
    if (isAbsolute(path) && !path.endsWith('/')) return word;
    return { problem: `"${word}" does not name an absolute socket path`, expected };
  }
  const tcp = /^tcp:(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(word);
  if (tcp !== null) {
    const ip = tcp[1] ?? tcp[2] ?? '';
    const port = Number(tcp[3]);
    const family = isIP(ip);
    const okIp = (tcp[1] !== undefined && family === 6) || (tcp[2] !== undefined && family === 4);
    if (okIp && port >= 1 && port <= 65535) return word;
    return { problem: `"${word}" is not a valid IP address and port`, expected };
  }
  return { problem: `"${word}" is not a database socket`, expected };
}

/** PATH of `audit-log`: absolute, naming a file (not ending in /). */
export function parseAbsolutePath(word: string): string | Problem {
  const expected = 'an absolute file path (e.g. /var/log/xkvm/audit.log)';
  if (!isAbsolute(word)) return { problem: `"${word}" is not an absolute path`, expected };
  if (word.endsWith('/')) return { problem: `"${word}" names a directory`, expected };
  return word;
}
