// Hostile frame bodies: well framed, but not one plain msgpack map of the allowed kinds. The
// helper decodes strictly (shared/src/protocol/decode.ts): such a frame gets BAD_FRAME (id 0,
// the request cannot be read) and the connection is closed; nothing else happens and everyone,
// including a new connection from the same client, is still served.
import { test } from '../../support/suite.js';
import { closeBench, hostile, MapOf, mp, openBench, Raw, rawStr, type Bench, type MpValue } from './support.js';
import { rawFrame } from './wire.js';

let bench: Bench | undefined;
const b = (): Bench => {
  if (bench === undefined) throw new Error('no bench');
  return bench;
};

test.before(async () => {
  bench = await openBench();
});

test.after(async () => {
  await closeBench(bench);
});

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

/** [what the body is, the body] — every one must be refused with BAD_FRAME and a close. */
const cases: Array<[string, Buffer, RegExp?]> = [
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
  ['a nil map key', mp(new MapOf([[null, 1], ['v', 1], ['id', 5]])), /key/],
  ['an array as a map key', mp(new MapOf([[['v'], 1], ['v', 1], ['id', 5]])), /key/],
  ['a map as a map key', mp(new MapOf([[new MapOf([['v', 1]]), 1], ['v', 1], ['id', 5]])), /key/],
];

for (const [what, body, mentions] of cases) {
  test(`${what} is refused with BAD_FRAME, the connection closed, and nothing else happens`, async () => {
    await hostile(b(), rawFrame(body), { code: 'BAD_FRAME', id: 0, closes: true, ...(mentions === undefined ? {} : { mentions }) }, what);
  });
}

test('an id written as a 64-bit integer is read by its value: id 5 as uint64 is not "out of range"', async () => {
  // msgpack lets an encoder pick any width; 0xcf 00..05 is the number 5
  const body = mp(new MapOf([['v', 1], ['id', new Raw(Buffer.from([0xcf, 0, 0, 0, 0, 0, 0, 0, 5]))], ['op', 'make-nics'], ['bridges', ['-bad']]]));
  await hostile(b(), rawFrame(body), { code: 'BAD_NAME', id: 5, closes: false }, 'id 5 as uint64, then a bad name');
});

test.run();
