import { ErrorCode } from './codes.js';
import { ProtocolError } from './error.js';
import { MAX_ITEMS_PER_REQUEST, MAX_QUEUES, MAX_REQUEST_ID, PROTOCOL_VERSION } from './limits.js';
import type { Lifetime, MakeNicsRequest, Nic, NicRequest, Port, Reply, Request } from './messages.js';
import { describeType, ifnameProblem } from './names.js';
import type { WireValue } from './decode.js';
import { escapeForTerminal } from '../text/escape.js';

/** A caller's string inside a message: control characters escaped, at most 40 characters. */
function quoted(text: string): string {
  return `"${escapeForTerminal(text.length > 40 ? `${text.slice(0, 40)}…` : text)}"`;
}

type WireMap = { [key: string]: WireValue };

function isMap(value: WireValue | undefined): value is WireMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(map: WireMap, allowed: readonly string[], where: string, id?: number): void {
  for (const key of Object.keys(map)) {
    if (!allowed.includes(key)) {
      throw new ProtocolError(
        ErrorCode.BadRequest,
        `unknown key ${quoted(key)} in ${where} (allowed: ${allowed.join(', ')})`,
        id === undefined ? {} : { id },
      );
    }
  }
}

function readId(map: WireMap): number | undefined {
  const id = map['id'];
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_REQUEST_ID
    ? id
    : undefined;
}

function checkName(value: WireValue | undefined, what: string, id: number): string {
  const problem = ifnameProblem(value);
  if (problem !== undefined) {
    throw new ProtocolError(ErrorCode.BadName, `${what} is not a valid interface name: ${problem}`, { id });
  }
  return value as string;
}

function checkList(value: WireValue | undefined, key: string, id: number): WireValue[] {
  if (!Array.isArray(value)) {
    throw new ProtocolError(ErrorCode.BadRequest, `"${key}" must be an array, got ${describeType(value)}`, { id });
  }
  if (value.length === 0 || value.length > MAX_ITEMS_PER_REQUEST) {
    throw new ProtocolError(
      ErrorCode.BadRequest,
      `"${key}" must hold 1 to ${MAX_ITEMS_PER_REQUEST} items, it holds ${value.length}`,
      { id },
    );
  }
  return value;
}

/** A MAC as a request carries it: six pairs of hex digits (either case) separated by ":". */
const MAC = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;

/**
 * Why `value` is not a MAC a guest may use as its own (its source address), or undefined.
 * Multicast (the first octet's low bit, broadcast included) and all-zero addresses are refused.
 */
export function macProblem(value: WireValue | undefined): string | undefined {
  if (typeof value !== 'string') return `expected a string, got ${describeType(value)}`;
  if (!MAC.test(value)) return `${quoted(value)} is not six hex pairs separated by ":" (e.g. 52:54:00:12:34:56)`;
  if ((parseInt(value.slice(0, 2), 16) & 1) === 1) return `${value} is a multicast address (the first octet is odd)`;
  if (/^00(?::00){5}$/.test(value)) return 'it is all zero';
  return undefined;
}

/** A whole number from `min` to `max`. */
function isCount(value: WireValue | undefined, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/**
 * A make-nics request's nics: `nics` [{bridge, queues?, mac?}], or `bridges` [B, ...] read as
 * nics [{bridge: B}, ...]; exactly one of the two. MACs come back lowercase.
 */
function readNics(value: WireMap, id: number): NicRequest[] {
  if (value['nics'] !== undefined && value['bridges'] !== undefined) {
    throw new ProtocolError(ErrorCode.BadRequest, 'a make-nics request carries "nics" or "bridges", not both', { id });
  }
  if (value['nics'] === undefined) {
    if (value['bridges'] === undefined) {
      throw new ProtocolError(ErrorCode.BadRequest, 'a make-nics request needs "nics" (or "bridges"), got neither', { id });
    }
    return checkList(value['bridges'], 'bridges', id).map((b, i) => ({ bridge: checkName(b, `bridges[${i}]`, id) }));
  }
  return checkList(value['nics'], 'nics', id).map((n, i): NicRequest => {
    if (!isMap(n)) {
      throw new ProtocolError(ErrorCode.BadRequest, `nics[${i}] must be a map {bridge, queues?, mac?}, got ${describeType(n)}`, { id });
    }
    checkKeys(n, ['bridge', 'queues', 'mac'], `nics[${i}]`, id);
    const nic: NicRequest = { bridge: checkName(n['bridge'], `nics[${i}].bridge`, id) };
    const queues = n['queues'];
    if (queues !== undefined) {
      if (!isCount(queues, 1, MAX_QUEUES)) {
        throw new ProtocolError(ErrorCode.BadRequest, `nics[${i}].queues must be a whole number from 1 to ${MAX_QUEUES}`, { id });
      }
      nic.queues = queues;
    }
    const mac = n['mac'];
    if (mac !== undefined) {
      const problem = macProblem(mac);
      if (problem !== undefined) {
        throw new ProtocolError(ErrorCode.BadRequest, `nics[${i}].mac is not a unicast MAC: ${problem}`, { id });
      }
      nic.mac = (mac as string).toLowerCase();
    }
    return nic;
  });
}

/**
 * Validate a decoded frame as a request. Throws ProtocolError (with the request id when one
 * could be read) for anything that is not exactly one of the two requests of the contract.
 */
export function parseRequest(value: WireValue): Request {
  if (!isMap(value)) {
    throw new ProtocolError(ErrorCode.BadRequest, `a request must be a map, got ${describeType(value)}`);
  }
  const id = readId(value);
  if (id === undefined) {
    throw new ProtocolError(ErrorCode.BadRequest, `"id" must be an unsigned integer up to ${MAX_REQUEST_ID}`);
  }
  if (value['v'] !== PROTOCOL_VERSION) {
    throw new ProtocolError(ErrorCode.BadVersion, `"v" must be ${PROTOCOL_VERSION}`, { id });
  }
  const op = value['op'];
  if (op === 'make-nics') {
    checkKeys(value, ['v', 'id', 'op', 'nics', 'bridges', 'lifetime', 'handoff'], 'a make-nics request', id);
    const lifetime = value['lifetime'];
    if (lifetime !== undefined && lifetime !== 'session' && lifetime !== 'persistent') {
      throw new ProtocolError(ErrorCode.BadRequest, '"lifetime" must be "session" or "persistent"', { id });
    }
    const handoff = value['handoff'];
    if (handoff !== undefined && handoff !== 'name' && handoff !== 'fd') {
      throw new ProtocolError(ErrorCode.BadRequest, '"handoff" must be "name" or "fd"', { id });
    }
    if (handoff === 'fd' && lifetime !== undefined) {
      throw new ProtocolError(ErrorCode.BadRequest, '"lifetime" does not apply to handoff "fd": a tap handed over as fds lives as long as its fds', { id });
    }
    const request: MakeNicsRequest = { v: 1, id, op, nics: readNics(value, id) };
    if (lifetime !== undefined) request.lifetime = lifetime as Lifetime;
    if (handoff !== undefined) request.handoff = handoff;
    return request;
  }
  if (op === 'ovs-cleanup') {
    checkKeys(value, ['v', 'id', 'op', 'ports'], 'an ovs-cleanup request', id);
    const ports = checkList(value['ports'], 'ports', id).map((p, i): Port => {
      if (!isMap(p)) {
        throw new ProtocolError(ErrorCode.BadRequest, `ports[${i}] must be a map {bridge, tap}`, { id });
      }
      checkKeys(p, ['bridge', 'tap'], `ports[${i}]`, id);
      return {
        bridge: checkName(p['bridge'], `ports[${i}].bridge`, id),
        tap: checkName(p['tap'], `ports[${i}].tap`, id),
      };
    });
    return { v: 1, id, op, ports };
  }
  throw new ProtocolError(
    ErrorCode.UnknownOp,
    typeof op === 'string' ? `unknown op ${quoted(op)} (allowed: make-nics, ovs-cleanup)` : '"op" must be a string',
    { id },
  );
}

/** The MTUs a tap can have (the kernel's ETH_MIN_MTU; a 16-bit IFLA_MTU for a tap). */
const MIN_MTU = 68;
const MAX_MTU = 65535;

function replyShape(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.BadFrame, `the helper sent a malformed reply: ${message}`);
}

function readPort(value: WireValue | undefined, withType: true): Nic;
function readPort(value: WireValue | undefined, withType: false): Port;
function readPort(value: WireValue | undefined, withType: boolean): Nic | Port {
  if (!isMap(value)) throw replyShape('a list item is not a map');
  const bridge = value['bridge'];
  const tap = value['tap'];
  if (ifnameProblem(bridge) !== undefined || ifnameProblem(tap) !== undefined) {
    throw replyShape('a bridge or tap name is not a valid interface name');
  }
  if (!withType) return { bridge: bridge as string, tap: tap as string };
  const type = value['type'];
  if (type !== 'brctl' && type !== 'ovs') throw replyShape('a nic type is neither "brctl" nor "ovs"');
  const nic: Nic = { bridge: bridge as string, tap: tap as string, type };
  const { mtu, queues, vlan, mac } = value;
  if (mtu !== undefined) {
    if (!isCount(mtu, MIN_MTU, MAX_MTU)) throw replyShape(`a nic's "mtu" is not a whole number from ${MIN_MTU} to ${MAX_MTU}`);
    nic.mtu = mtu;
  }
  if (queues !== undefined) {
    if (!isCount(queues, 1, MAX_QUEUES)) throw replyShape(`a nic's "queues" is not a whole number from 1 to ${MAX_QUEUES}`);
    nic.queues = queues;
  }
  if (vlan !== undefined) {
    if (!isCount(vlan, 1, 4094)) throw replyShape('a nic\'s "vlan" is not a VLAN id from 1 to 4094');
    nic.vlan = vlan;
  }
  if (mac !== undefined) {
    if (macProblem(mac) !== undefined) throw replyShape('a nic\'s "mac" is not a unicast MAC');
    nic.mac = (mac as string).toLowerCase();
  }
  return nic;
}

/** Validate a decoded frame as a reply (client side: the helper is trusted, but checked). */
export function parseReply(value: WireValue): Reply {
  if (!isMap(value)) throw replyShape(`expected a map, got ${describeType(value)}`);
  const id = readId(value);
  if (id === undefined || value['v'] !== PROTOCOL_VERSION) throw replyShape('bad "v" or "id"');
  const ok = value['ok'];
  if (ok === false) {
    const error = value['error'];
    if (!isMap(error) || typeof error['code'] !== 'string' || typeof error['message'] !== 'string') {
      throw replyShape('an error reply without {code, message}');
    }
    return { v: 1, id, ok, error: { code: error['code'], message: error['message'] } };
  }
  if (ok !== true) throw replyShape('"ok" is not a boolean');
  const nics = value['nics'];
  if (Array.isArray(nics)) return { v: 1, id, ok, nics: nics.map((n) => readPort(n, true)) };
  const removed = value['removed'];
  if (Array.isArray(removed)) return { v: 1, id, ok, removed: removed.map((p) => readPort(p, false)) };
  throw replyShape('neither "nics" nor "removed" in a success reply');
}
