import { MAX_ITEMS_PER_REQUEST } from '../../../shared/src/protocol/limits.js';
import { ifnameProblem, isValidIfname } from '../../../shared/src/protocol/names.js';
import { NetError } from './errors.js';

/*
 * Defence in depth: the protocol layer validated all of this already; this layer checks again at
 * its entry, before it runs anything or reads /sys, so no other caller can get past it.
 */

function show(value: unknown): string {
  if (typeof value !== 'string') return '';
  const quoted = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return ` ${quoted}`;
}

/** An interface name, or BAD_NAME. */
export function checkIfname(name: unknown, what: string): string {
  if (isValidIfname(name)) return name;
  throw new NetError('BAD_NAME', `bad ${what} name${show(name)}: ${ifnameProblem(name) ?? 'invalid'}`);
}

/** A list of 0 to MAX_ITEMS_PER_REQUEST items, or BAD_REQUEST. */
export function checkList<T>(items: readonly T[], what: string): readonly T[] {
  if (!Array.isArray(items)) throw new NetError('BAD_REQUEST', `${what}: expected a list`);
  if (items.length > MAX_ITEMS_PER_REQUEST) {
    throw new NetError('BAD_REQUEST', `${what}: ${items.length} items, at most ${MAX_ITEMS_PER_REQUEST}`);
  }
  return items;
}

/** Bridge and tap names of a list of {bridge, tap} pairs. */
export function checkPorts(ports: readonly { bridge: unknown; tap: unknown }[], what: string): void {
  checkList(ports, what);
  for (const p of ports) {
    if (typeof p !== 'object' || p === null) throw new NetError('BAD_REQUEST', `${what}: expected {bridge, tap}`);
    checkIfname(p.bridge, 'bridge');
    checkIfname(p.tap, 'tap');
  }
}

/** A user or group id a device can be given (0 … 2^32-2; 2^32-1 means "none"). */
export function checkId(id: unknown, what: string): number {
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < 0xffff_ffff) return id;
  throw new NetError('BAD_REQUEST', `bad ${what} ${String(id)}: expected an integer from 0 to 4294967294`);
}

/** Session tags go into ovs-vsctl arguments: a plain token, nothing its parser could read as syntax. */
const SESSION = /^[A-Za-z0-9_.:-]{1,128}$/;

export function checkSession(session: unknown): string {
  if (typeof session === 'string' && SESSION.test(session)) return session;
  throw new NetError('BAD_REQUEST', `bad session tag${show(session)}: expected 1 to 128 of A-Z a-z 0-9 _ . : -`);
}

/** The policy's ovsdb socket: one argument (`--db=…`), so only control characters are refused. */
export function checkOvsdb(ovsdb: unknown): string | undefined {
  if (ovsdb === undefined) return undefined;
  if (typeof ovsdb === 'string' && ovsdb !== '' && ovsdb.length <= 1024 && !/[\u0000-\u001f\u007f\s]/.test(ovsdb)) {
    return ovsdb;
  }
  throw new NetError('BAD_REQUEST', `bad ovsdb address${show(ovsdb)}`);
}

/** A unicast MAC in lower case (aa:bb:cc:dd:ee:ff), or BAD_REQUEST: it goes into bridge and ovs-ofctl arguments. */
export function checkMac(mac: unknown, what: string): string {
  if (typeof mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)
    && (Number.parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00') return mac;
  throw new NetError('BAD_REQUEST', `bad ${what}${show(mac)}: expected a unicast MAC, lower case, like 52:54:00:12:34:56`);
}
