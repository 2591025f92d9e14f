// The hostile-input case tables, shared by the two tiers so they cannot drift: the suites against
// the real helper (decoding.test.ts, validation.test.ts here) send each case over a socket; the
// unit suites (test/shared/protocol/*.unit.test.ts, test/helper/transport) put the same bytes
// through decodeMessage and parseRequest, and through a Connection, directly. Bodies are written
// with the hand-rolled encoder of support.ts, not the wire's own.
import { MapOf, mp, Raw, rawStr, type MpValue } from './support.js';

// --- frames that do not decode to one plain map: BAD_FRAME, id 0, the connection closed ---------

const request = { v: 1, id: 5, op: 'make-nics', bridges: ['br0'] } as const;
const withValue = (key: string, value: MpValue): MapOf => new MapOf([['v', 1], ['id', 5], ['op', 'make-nics'], ['bridges', ['br0']], [key, value]]);
const cleanup = (port: MpValue): MpValue => ({ v: 1, id: 5, op: 'ovs-cleanup', ports: [port] });

function nested(depth: number): MpValue {
  let v: MpValue = 'br0';
  for (let i = 0; i < depth; i += 1) v = [v];
  return v;
}

/** A 4-entry map up to the value of "bridges" (which the case writes). */
const prefix = Buffer.concat([Buffer.from([0x84]), mp('v'), mp(1), mp('id'), mp(5), mp('op'), mp('make-nics'), mp('bridges')]);

/** [what the body is, the body, what the message mentions] — every one must be refused with BAD_FRAME and a close. */
export const badFrames: ReadonlyArray<readonly [string, Buffer, RegExp?]> = [
  ['a body that is not msgpack (0xc1)', Buffer.from([0xc1]), /msgpack/],
  ['a request map followed by a trailing byte', Buffer.concat([mp(request), Buffer.from([0x00])]), /follow/],
  ['two request maps in one frame', Buffer.concat([mp(request), mp(request)])],
  ['a top-level array', mp(['make-nics', 'br0']), /map/],
  ['a top-level string', mp('make-nics'), /map/],
  ['a top-level nil', mp(null), /map/],
  ['a top-level integer', mp(1), /map/],
  ['a top-level boolean', mp(true), /map/],
  ['a top-level float', mp(1.5), /map/],
  ['a fixext 1 extension as the whole body', Buffer.from([0xd4, 0x01, 0x00]), /extension/],
  ['a fixext 1 extension as the id', mp(new MapOf([['v', 1], ['id', new Raw(Buffer.from([0xd4, 0x01, 0x05]))], ['op', 'make-nics'], ['bridges', ['br0']]])), /extension/],
  ['an ext 8 extension inside bridges', mp(withValue('bridges', [new Raw(Buffer.from([0xc7, 0x03, 0x05, 0x62, 0x72, 0x30]))])), /extension/],
  ['a timestamp (extension -1) as the id', mp(new MapOf([['v', 1], ['id', new Raw(Buffer.from([0xd6, 0xff, 0, 0, 0, 5]))], ['op', 'make-nics'], ['bridges', ['br0']]])), /extension/],
  ['a 96-bit timestamp (ext 8, type -1) as a value', mp(withValue('lifetime', new Raw(Buffer.from([0xc7, 12, 0xff, ...new Array<number>(12).fill(0)])))), /extension/],
  ['msgpackr\'s record extension (0x72)', Buffer.from([0xd4, 0x72, 0x40]), /extension/],
  ['a binary value as a bridge name', mp(withValue('bridges', [new Raw(Buffer.from([0xc4, 0x03, 0x62, 0x72, 0x30]))])), /binary/],
  ['a binary value as a map key', mp(new MapOf([[new Raw(Buffer.from([0xc4, 0x01, 0x76])), 1], ['id', 5]])), /binary/],
  ['a "__proto__" key at the top level', mp(new MapOf([['v', 1], ['id', 5], ['op', 'make-nics'], ['bridges', ['br0']], ['__proto__', new MapOf([['polluted', true]])]])), /__proto__/],
  ['a "constructor" key at the top level', mp(withValue('constructor', new MapOf([['prototype', new MapOf([['polluted', true]])]]))), /constructor/],
  ['a "prototype" key at the top level', mp(withValue('prototype', 1)), /prototype/],
  ['a "__proto__" key inside a port', mp(cleanup(new MapOf([['bridge', 'br0'], ['tap', 'xkvmabc'], ['__proto__', new MapOf([['isAdmin', true]])]]))), /__proto__/],
  ['a "constructor" key inside a port', mp(cleanup(new MapOf([['bridge', 'br0'], ['tap', 'xkvmabc'], ['constructor', 1]]))), /constructor/],
  ['a "prototype" key inside a port', mp(cleanup(new MapOf([['prototype', 1], ['bridge', 'br0'], ['tap', 'xkvmabc']]))), /prototype/],
  ['a "__proto__" key in a map inside bridges', mp(withValue('bridges', [new MapOf([['__proto__', 'br0']])])), /__proto__/],
  ['nesting 8 levels deep', mp(withValue('bridges', nested(7))), /nest|deep/],
  ['10000 nested arrays', Buffer.concat([Buffer.alloc(10_000, 0x91), Buffer.from([0xc0])]), /nest|deep/],
  ['10000 nested maps', Buffer.concat([Buffer.alloc(9_999 * 2).map((_, i) => (i % 2 === 0 ? 0x81 : 0xc0)), Buffer.from([0x81, 0xc0, 0xc0])]), /nest|deep|key/],
  ['an array32 claiming 0xFFFFFFFF items with two present', Buffer.concat([prefix, Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xa3, 0x62, 0x72, 0x30, 0xc0])]), /elements|truncated/],
  ['a top-level map32 claiming 0x7FFFFFFF entries', Buffer.from([0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x76, 0x01]), /elements|truncated/],
  ['an array16 claiming 1000 items with one present', Buffer.concat([prefix, Buffer.from([0xdc, 0x03, 0xe8, 0xa3, 0x62, 0x72, 0x30])]), /truncated/],
  ['a str32 claiming 0xFFFFFFFF bytes with three present', Buffer.concat([Buffer.from([0x81, 0xa2, 0x6f, 0x70, 0xdb, 0xff, 0xff, 0xff, 0xff]), Buffer.from('abc')]), /truncated/],
  ['invalid UTF-8 (0xFF 0xFE) in a bridge name', mp(withValue('bridges', [rawStr([0x62, 0xff, 0xfe])])), /UTF-8/],
  ['an overlong UTF-8 "/" (0xC0 0xAF) in a bridge name', mp(withValue('bridges', [rawStr([0x62, 0x72, 0xc0, 0xaf])])), /UTF-8/],
  ['a UTF-16 surrogate encoded in UTF-8 in a key', mp(new MapOf([[rawStr([0xed, 0xa0, 0x80]), 1], ['v', 1], ['id', 5]])), /UTF-8/],
  ['a truncated multi-byte character in the op', mp(new MapOf([['v', 1], ['id', 5], ['op', rawStr([0x6d, 0xc3])], ['bridges', ['br0']]])), /UTF-8/],
  ['an integer map key', mp(new MapOf([[1, 'v'], ['v', 1], ['id', 5]])), /key/],
  ['the same key twice ("bridges": a first value, then a second)', mp(new MapOf([['v', 1], ['id', 5], ['op', 'make-nics'], ['bridges', ['br0']], ['bridges', ['br1']]])), /same key twice/],
  ['the same key twice in a port', mp(cleanup(new MapOf([['bridge', 'br0'], ['tap', 'xkvmabc'], ['tap', 'xkvmdef']]))), /same key twice/],
  ['a nil map key', mp(new MapOf([[null, 1], ['v', 1], ['id', 5]])), /key/],
  ['an array as a map key', mp(new MapOf([[['v'], 1], ['v', 1], ['id', 5]])), /key/],
  ['a map as a map key', mp(new MapOf([[new MapOf([['v', 1]]), 1], ['v', 1], ['id', 5]])), /key/],
];

// --- maps that are not valid requests: an error reply, the connection kept ----------------------

type Build = (id: number) => MpValue;
export interface RequestCase {
  readonly what: string;
  readonly build: Build;
  readonly code: string | readonly string[];
  /** the reply carries the request's id (else 0: the id is what is wrong) */
  readonly idReadable: boolean;
  readonly mentions?: RegExp;
}

const mk = (id: number, extra: Record<string, MpValue> = {}): Record<string, MpValue> =>
  ({ v: 1, id, op: 'make-nics', bridges: ['br0'], lifetime: 'session', ...extra });
const without = (o: Record<string, MpValue>, key: string): Record<string, MpValue> => {
  const copy = { ...o };
  delete copy[key];
  return copy;
};
/** make-nics with `nics` (and no `bridges`). */
const nk = (id: number, nics: MpValue): Record<string, MpValue> => ({ v: 1, id, op: 'make-nics', nics, lifetime: 'session' });
const oc = (id: number, ports: MpValue): Record<string, MpValue> => ({ v: 1, id, op: 'ovs-cleanup', ports });
const u64 = (n: bigint): Raw => {
  const buf = Buffer.alloc(9);
  buf[0] = 0xcf;
  buf.writeBigUInt64BE(n, 1);
  return new Raw(buf);
};

const f64 = (n: number): Raw => {
  const buf = Buffer.alloc(9);
  buf[0] = 0xcb;
  buf.writeDoubleBE(n, 1);
  return new Raw(buf);
};

export const badRequests: readonly RequestCase[] = [
  // version
  { what: 'a request without "v"', build: (id) => without(mk(id), 'v'), code: ['BAD_VERSION', 'BAD_REQUEST'], idReadable: true, mentions: /"v"/ },
  { what: 'a request with v: 2', build: (id) => mk(id, { v: 2 }), code: 'BAD_VERSION', idReadable: true, mentions: /"v"/ },
  { what: 'a request with v: "1" (a string)', build: (id) => mk(id, { v: '1' }), code: ['BAD_VERSION', 'BAD_REQUEST'], idReadable: true },
  // id
  { what: 'a request without "id"', build: (id) => without(mk(id), 'id'), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id -1', build: (id) => mk(id, { id: -1 }), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id 1.5', build: (id) => mk(id, { id: 1.5 }), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id 2^32 written as a float', build: (id) => mk(id, { id: f64(2 ** 32) }), code: 'BAD_REQUEST', idReadable: false },
  { what: 'a request with id 2^32 (a uint64, the only integer encoding for it)', build: (id) => mk(id, { id: u64(2n ** 32n) }), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id 2^64-1 (uint64)', build: (id) => mk(id, { id: u64(2n ** 64n - 1n) }), code: 'BAD_REQUEST', idReadable: false },
  { what: 'a request with id "5" (a string)', build: (id) => mk(id, { id: '5' }), code: 'BAD_REQUEST', idReadable: false, mentions: /"id"/ },
  { what: 'a request with id nil', build: (id) => mk(id, { id: null }), code: 'BAD_REQUEST', idReadable: false },
  // op
  { what: 'an unknown op', build: (id) => mk(id, { op: 'make-everything' }), code: 'UNKNOWN_OP', idReadable: true, mentions: /make-everything/ },
  { what: 'the reference\'s spelling "make_nics"', build: (id) => mk(id, { op: 'make_nics' }), code: 'UNKNOWN_OP', idReadable: true },
  { what: 'a request without "op"', build: (id) => without(mk(id), 'op'), code: ['UNKNOWN_OP', 'BAD_REQUEST'], idReadable: true, mentions: /"op"|op/ },
  { what: 'an op that is an integer', build: (id) => mk(id, { op: 1 }), code: ['UNKNOWN_OP', 'BAD_REQUEST'], idReadable: true },
  { what: 'an op that is an array', build: (id) => mk(id, { op: ['make-nics'] }), code: ['UNKNOWN_OP', 'BAD_REQUEST'], idReadable: true },
  { what: 'an op that is a map', build: (id) => mk(id, { op: { name: 'make-nics' } }), code: ['UNKNOWN_OP', 'BAD_REQUEST'], idReadable: true },
  // unknown keys
  { what: 'an unknown top-level key "uid"', build: (id) => mk(id, { uid: 0 }), code: 'BAD_REQUEST', idReadable: true, mentions: /"uid"/ },
  { what: 'an unknown top-level key "user"', build: (id) => mk(id, { user: 'root' }), code: 'BAD_REQUEST', idReadable: true, mentions: /"user"/ },
  { what: 'a "ports" key in make-nics', build: (id) => mk(id, { ports: [{ bridge: 'br0', tap: 'xkvmx' }] }), code: 'BAD_REQUEST', idReadable: true, mentions: /ports/ },
  { what: 'a "bridges" key in ovs-cleanup', build: (id) => ({ ...oc(id, [{ bridge: 'br0', tap: 'xkvmx' }]), bridges: ['br0'] }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'an unknown key inside a port', build: (id) => oc(id, [{ bridge: 'br0', tap: 'xkvmx', owner: 0 }]), code: 'BAD_REQUEST', idReadable: true, mentions: /owner/ },
  // bridges
  { what: 'a make-nics without "bridges"', build: (id) => without(mk(id), 'bridges'), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  // nics (per-NIC options)
  { what: 'both "nics" and "bridges"', build: (id) => mk(id, { nics: [{ bridge: 'br0' }] }), code: 'BAD_REQUEST', idReadable: true, mentions: /nics.*bridges.*not both/ },
  { what: 'nics as a string', build: (id) => nk(id, 'br0'), code: 'BAD_REQUEST', idReadable: true, mentions: /"nics" must be an array/ },
  { what: 'an empty nics list', build: (id) => nk(id, []), code: 'BAD_REQUEST', idReadable: true, mentions: /nics/ },
  { what: '65 nics', build: (id) => nk(id, new Array<MpValue>(65).fill({ bridge: 'br0' })), code: 'BAD_REQUEST', idReadable: true, mentions: /65|64/ },
  { what: 'a nic that is a bare bridge name', build: (id) => nk(id, ['br0']), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\] must be a map/ },
  { what: 'a nic without "bridge"', build: (id) => nk(id, [{ queues: 2 }]), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /nics\[0\]\.bridge/ },
  { what: 'an unknown key inside a nic', build: (id) => nk(id, [{ bridge: 'br0' }, { bridge: 'br0', vlan: 10 }]), code: 'BAD_REQUEST', idReadable: true, mentions: /"vlan" in nics\[1\]/ },
  { what: 'a nic asking for its own owner', build: (id) => nk(id, [{ bridge: 'br0', uid: 0 }]), code: 'BAD_REQUEST', idReadable: true, mentions: /"uid" in nics\[0\]/ },
  { what: 'queues 0', build: (id) => nk(id, [{ bridge: 'br0', queues: 0 }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.queues.*1 to 16/ },
  { what: 'queues 17', build: (id) => nk(id, [{ bridge: 'br0', queues: 17 }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.queues/ },
  { what: 'queues 2.5', build: (id) => nk(id, [{ bridge: 'br0', queues: 2.5 }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.queues/ },
  { what: 'queues "4" (a string)', build: (id) => nk(id, [{ bridge: 'br0', queues: '4' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.queues/ },
  { what: 'queues 2^32 (a uint64)', build: (id) => nk(id, [{ bridge: 'br0', queues: u64(2n ** 32n) }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.queues/ },
  { what: 'a MAC without separators', build: (id) => nk(id, [{ bridge: 'br0', mac: '525400123456' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.mac/ },
  { what: 'a MAC with "-" separators', build: (id) => nk(id, [{ bridge: 'br0', mac: '52-54-00-12-34-56' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.mac/ },
  { what: 'a MAC of five octets', build: (id) => nk(id, [{ bridge: 'br0', mac: '52:54:00:12:34' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.mac/ },
  { what: 'a MAC with a non-hex digit', build: (id) => nk(id, [{ bridge: 'br0', mac: '52:54:00:12:34:5g' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.mac/ },
  { what: 'a MAC with a trailing newline', build: (id) => nk(id, [{ bridge: 'br0', mac: '52:54:00:12:34:56\n' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.mac/ },
  { what: 'a multicast MAC', build: (id) => nk(id, [{ bridge: 'br0', mac: '01:00:5e:00:00:01' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /multicast/ },
  { what: 'the broadcast MAC', build: (id) => nk(id, [{ bridge: 'br0', mac: 'ff:ff:ff:ff:ff:ff' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /multicast/ },
  { what: 'the all-zero MAC', build: (id) => nk(id, [{ bridge: 'br0', mac: '00:00:00:00:00:00' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /zero/ },
  { what: 'a MAC that is an integer', build: (id) => nk(id, [{ bridge: 'br0', mac: 5 }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[0\]\.mac/ },
  { what: 'a bad MAC after a good nic', build: (id) => nk(id, [{ bridge: 'br0', mac: '52:54:00:12:34:56' }, { bridge: 'br1', mac: 'x' }]), code: 'BAD_REQUEST', idReadable: true, mentions: /nics\[1\]\.mac/ },
  // handoff
  { what: 'handoff "socket"', build: (id) => mk(id, { handoff: 'socket' }), code: 'BAD_REQUEST', idReadable: true, mentions: /handoff/ },
  { what: 'handoff nil', build: (id) => mk(id, { handoff: null }), code: 'BAD_REQUEST', idReadable: true, mentions: /handoff/ },
  { what: 'handoff "fd" with lifetime "session"', build: (id) => mk(id, { handoff: 'fd', lifetime: 'session' }), code: 'BAD_REQUEST', idReadable: true, mentions: /"lifetime" does not apply to handoff "fd"/ },
  { what: 'handoff "fd" with lifetime "persistent"', build: (id) => mk(id, { handoff: 'fd', lifetime: 'persistent' }), code: 'BAD_REQUEST', idReadable: true, mentions: /"lifetime" does not apply to handoff "fd"/ },
  { what: 'handoff in an ovs-cleanup', build: (id) => ({ ...oc(id, [{ bridge: 'br0', tap: 'xkvmx' }]), handoff: 'name' }), code: 'BAD_REQUEST', idReadable: true, mentions: /handoff/ },
  { what: 'bridges as a string', build: (id) => mk(id, { bridges: 'br0' }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'bridges as a map', build: (id) => mk(id, { bridges: { 0: 'br0' } }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'bridges as nil', build: (id) => mk(id, { bridges: null }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: 'an empty bridges list', build: (id) => mk(id, { bridges: [] }), code: 'BAD_REQUEST', idReadable: true, mentions: /bridges/ },
  { what: '65 bridges', build: (id) => mk(id, { bridges: new Array<string>(65).fill('br0') }), code: 'BAD_REQUEST', idReadable: true, mentions: /65|64/ },
  { what: 'a bridge that is an integer', build: (id) => mk(id, { bridges: [0] }), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /bridges\[0\]/ },
  { what: 'a bridge that is nil', build: (id) => mk(id, { bridges: ['br0', null] }), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /bridges\[1\]/ },
  { what: 'a bridge that is an array', build: (id) => mk(id, { bridges: [['br0']] }), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /bridges\[0\]/ },
  // lifetime
  { what: 'lifetime "forever"', build: (id) => mk(id, { lifetime: 'forever' }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  { what: 'lifetime "Session" (case matters)', build: (id) => mk(id, { lifetime: 'Session' }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  { what: 'lifetime nil', build: (id) => mk(id, { lifetime: null }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  { what: 'lifetime 1', build: (id) => mk(id, { lifetime: 1 }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  { what: 'lifetime in an ovs-cleanup', build: (id) => ({ ...oc(id, [{ bridge: 'br0', tap: 'xkvmx' }]), lifetime: 'session' }), code: 'BAD_REQUEST', idReadable: true, mentions: /lifetime/ },
  // ovs-cleanup shapes
  { what: 'ovs-cleanup without "ports"', build: (id) => ({ v: 1, id, op: 'ovs-cleanup' }), code: 'BAD_REQUEST', idReadable: true, mentions: /ports/ },
  { what: 'ports as a string', build: (id) => oc(id, 'br0:xkvmx'), code: 'BAD_REQUEST', idReadable: true, mentions: /ports/ },
  { what: 'an empty ports list', build: (id) => oc(id, []), code: 'BAD_REQUEST', idReadable: true, mentions: /ports/ },
  { what: '65 ports', build: (id) => oc(id, new Array<MpValue>(65).fill({ bridge: 'br0', tap: 'xkvmx' })), code: 'BAD_REQUEST', idReadable: true, mentions: /65|64/ },
  { what: 'a port that is a string', build: (id) => oc(id, ['br0:xkvmx']), code: 'BAD_REQUEST', idReadable: true, mentions: /ports\[0\]/ },
  { what: 'a port without "tap"', build: (id) => oc(id, [{ bridge: 'br0' }]), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /ports\[0\]/ },
  { what: 'a port without "bridge"', build: (id) => oc(id, [{ tap: 'xkvmx' }]), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /ports\[0\]/ },
  { what: 'a port whose tap starts with "-"', build: (id) => oc(id, [{ bridge: 'br0', tap: '-xkvmx' }]), code: 'BAD_NAME', idReadable: true, mentions: /ports\[0\]\.tap/ },
  { what: 'a port whose tap is "../lo"', build: (id) => oc(id, [{ bridge: 'br0', tap: '../lo' }]), code: 'BAD_NAME', idReadable: true, mentions: /ports\[0\]\.tap/ },
  { what: 'a port whose tap is 16 bytes', build: (id) => oc(id, [{ bridge: 'br0', tap: 'x'.repeat(16) }]), code: 'BAD_NAME', idReadable: true, mentions: /ports\[0\]\.tap/ },
  { what: 'a second port whose bridge holds a ";"', build: (id) => oc(id, [{ bridge: 'br0', tap: 'xkvmx' }, { bridge: 'br0;reboot', tap: 'xkvmy' }]), code: 'BAD_NAME', idReadable: true, mentions: /ports\[1\]\.bridge/ },
  { what: 'a port whose tap is an integer', build: (id) => oc(id, [{ bridge: 'br0', tap: 7 }]), code: ['BAD_NAME', 'BAD_REQUEST'], idReadable: true, mentions: /ports\[0\]\.tap/ },
  { what: 'a bad name after a good one', build: (id) => mk(id, { bridges: ['br0', 'br1', '-x'] }), code: 'BAD_NAME', idReadable: true, mentions: /bridges\[2\]/ },
];

// Interface names (invariant 2): each as the first bridge of a make-nics, and as a port's bridge.
export const badNames: ReadonlyArray<readonly [string, string]> = [
  ['16 bytes', 'abcdefghijklmnop'],
  ['16 bytes of 8 "é"', 'éééééééé'],
  ['empty', ''],
  ['with ";"', 'br0;reboot'],
  ['with "/"', 'br/0'],
  ['with a space', 'br 0'],
  ['with a NUL', 'br\u00000'],
  ['with a newline', 'br0\nbr1'],
  ['with a tab', 'br0\t'],
  ['with a non-ASCII "é"', 'bré'],
  ['with "$(...)"', '$(reboot)'],
  ['with a backquote', '`id`'],
  ['with ":" (an alias)', 'br0:1'],
  ['with a leading "-"', '-br0'],
  ['that is "--help"', '--help'],
  ['with a leading "."', '.br0'],
  ['"."', '.'],
  ['".."', '..'],
  ['with an escape sequence', '\u001b[31mbr0'],
];

/** Where a bad name goes in a request, and the field the BAD_NAME message must name. */
export const nameUses: ReadonlyArray<{ readonly field: RegExp; readonly build: (id: number, name: string) => MpValue }> = [
  { field: /bridges\[0\]/, build: (id, name) => mk(id, { bridges: [name] }) },
  { field: /nics\[1\]\.bridge/, build: (id, name) => nk(id, [{ bridge: 'br0' }, { bridge: name, queues: 2 }]) },
  { field: /ports\[0\]\.bridge/, build: (id, name) => oc(id, [{ bridge: name, tap: 'xkvmx' }]) },
  { field: /ports\[0\]\.tap/, build: (id, name) => oc(id, [{ bridge: 'br0', tap: name }]) },
];

/** Caller text an error reply quotes: it must come back without raw control characters, at a bounded length. */
export const quotedInReplies: readonly RequestCase[] = [
  { what: 'a 2 KiB unknown key with an OSC escape', build: (id) => new MapOf([['v', 1], ['id', id], ['op', 'make-nics'], ['bridges', ['br0']], [`\u001b]0;owned\u0007${'k'.repeat(2000)}`, 1]]), code: 'BAD_REQUEST', idReadable: true },
  { what: 'an op with escapes', build: (id) => mk(id, { op: '\u001b[2J\u001b[Hmake-nics' }), code: 'UNKNOWN_OP', idReadable: true },
];
