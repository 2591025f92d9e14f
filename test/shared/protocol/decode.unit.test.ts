// The strict decoder (shared/src/protocol/decode.ts) checked against a second source of truth:
// msgpack bytes written out by hand from the msgpack specification, each with the value it must
// decode to (or the BAD_FRAME it must be refused with), never predicted by the project's own
// encoder; then the hostile-frame table the real-helper suite sends (test/helper/server/cases.ts),
// put through decodeMessage directly.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decodeBody, decodeMessage, type WireMap, type WireValue } from '../../../shared/src/protocol/decode.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { badFrames } from '../../helper/server/cases.js';
import { assertSentence } from '../../helper/server/support.js';

/** A decoded map as the decoder must produce it: a plain object without a prototype. */
function map(entries: Record<string, WireValue>): WireMap {
  return Object.assign(Object.create(null) as WireMap, entries);
}

const ascii = (text: string): number[] => [...Buffer.from(text, 'latin1')];

/** The ProtocolError `fn` throws (fails the test if it throws nothing or something else). */
function refusal(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Error('expected a ProtocolError, the value was decoded');
}

const hex = (bytes: readonly number[]): string => bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');

// [what, the bytes, the value they are] — from the msgpack spec's format table.
const decodes: Array<[string, number[], WireValue]> = [
  ['positive fixint 0', [0x00], 0],
  ['positive fixint 127', [0x7f], 127],
  ['negative fixint -1', [0xff], -1],
  ['negative fixint -32', [0xe0], -32],
  ['uint 8 255', [0xcc, 0xff], 255],
  ['uint 16 256', [0xcd, 0x01, 0x00], 256],
  ['uint 32 4294967295', [0xce, 0xff, 0xff, 0xff, 0xff], 4294967295],
  ['uint 64 5 (an encoder may pick any width)', [0xcf, 0, 0, 0, 0, 0, 0, 0, 5], 5],
  ['uint 64 2^53-1', [0xcf, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 9007199254740991],
  ['int 8 -128', [0xd0, 0x80], -128],
  ['int 16 -32768', [0xd1, 0x80, 0x00], -32768],
  ['int 32 -2147483648', [0xd2, 0x80, 0x00, 0x00, 0x00], -2147483648],
  ['int 64 -1', [0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], -1],
  ['int 64 -(2^53-1)', [0xd3, 0xff, 0xe0, 0, 0, 0, 0, 0, 1], -9007199254740991],
  ['float 32 1.5', [0xca, 0x3f, 0xc0, 0x00, 0x00], 1.5],
  ['float 64 1.5', [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], 1.5],
  ['float 64 pi', [0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18], Math.PI],
  ['float 64 -0.25', [0xcb, 0xbf, 0xd0, 0, 0, 0, 0, 0, 0], -0.25],
  ['nil', [0xc0], null],
  ['false', [0xc2], false],
  ['true', [0xc3], true],
  ['fixstr ""', [0xa0], ''],
  ['fixstr "br0"', [0xa3, ...ascii('br0')], 'br0'],
  ['fixstr "é" (two UTF-8 bytes)', [0xa2, 0xc3, 0xa9], 'é'],
  ['fixstr U+1F600 (four UTF-8 bytes)', [0xa4, 0xf0, 0x9f, 0x98, 0x80], '\u{1f600}'],
  ['str 8 "br0"', [0xd9, 0x03, ...ascii('br0')], 'br0'],
  ['str 16 "br0"', [0xda, 0x00, 0x03, ...ascii('br0')], 'br0'],
  ['str 32 "br0"', [0xdb, 0x00, 0x00, 0x00, 0x03, ...ascii('br0')], 'br0'],
  ['str 8 of 32 bytes (one past fixstr)', [0xd9, 0x20, ...new Array<number>(32).fill(0x78)], 'x'.repeat(32)],
  ['fixarray [1, 2, 3]', [0x93, 0x01, 0x02, 0x03], [1, 2, 3]],
  ['empty fixarray', [0x90], []],
  ['array 16 ["a", nil]', [0xdc, 0x00, 0x02, 0xa1, 0x61, 0xc0], ['a', null]],
  ['array 32 [[]]', [0xdd, 0x00, 0x00, 0x00, 0x01, 0x90], [[]]],
  ['nested arrays [[[["x"]]]]', [0x91, 0x91, 0x91, 0x91, 0xa1, 0x78], [[[['x']]]]],
  ['six levels of arrays (the most allowed)', [0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0], [[[[[[null]]]]]]],
  ['empty fixmap', [0x80], map({})],
  ['fixmap {a: 1, b: [2, 3]}', [0x82, 0xa1, 0x61, 0x01, 0xa1, 0x62, 0x92, 0x02, 0x03], map({ a: 1, b: [2, 3] })],
  ['map 16 {k: true}', [0xde, 0x00, 0x01, 0xa1, 0x6b, 0xc3], map({ k: true })],
  ['map 32 {k: -1}', [0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 0x6b, 0xff], map({ k: -1 })],
  ['a map in a map in an array', [0x91, 0x81, 0xa1, 0x6f, 0x81, 0xa1, 0x69, 0x07], [map({ o: map({ i: 7 }) })]],
  ['an array of 1024 nils (the most elements allowed)', [0xdc, 0x04, 0x00, ...new Array<number>(1024).fill(0xc0)], new Array<null>(1024).fill(null)],
  ['a make-nics request', [0x84, 0xa1, 0x76, 0x01, 0xa2, 0x69, 0x64, 0xcd, 0x30, 0x39, 0xa2, 0x6f, 0x70, 0xa9, ...ascii('make-nics'), 0xa7, ...ascii('bridges'), 0x92, 0xa3, ...ascii('br0'), 0xa3, ...ascii('br1')],
    map({ v: 1, id: 12345, op: 'make-nics', bridges: ['br0', 'br1'] })],
];

for (const [what, bytes, value] of decodes) {
  test(`${what} (${hex(bytes.slice(0, 6))}${bytes.length > 6 ? ' …' : ''}) decodes to exactly that value`, () => {
    assert.equal(decodeBody(Buffer.from(bytes)), value);
  });
}

test('a uint 64 above 2^53 arrives as the nearest double, for validation to refuse by range', () => {
  assert.is(decodeBody(Buffer.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), 2 ** 64);
  assert.is(decodeBody(Buffer.from([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0])), -(2 ** 63));
});

test('maps decode to objects without a prototype, so no key can reach Object.prototype', () => {
  const value = decodeMessage(Buffer.from([0x81, 0xa8, ...ascii('toString'), 0x01]));
  assert.is(Object.getPrototypeOf(value), null);
  assert.is(value['toString'], 1);
});

// [what, the bytes, what the message says] — each must be BAD_FRAME.
const refused: Array<[string, number[], RegExp]> = [
  ['fixext 1', [0xd4, 0x01, 0x00], /extension/],
  ['fixext 2', [0xd5, 0x01, 0x00, 0x00], /extension/],
  ['fixext 4', [0xd6, 0x01, 0, 0, 0, 0], /extension/],
  ['fixext 8', [0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], /extension/],
  ['fixext 16', [0xd8, 0x01, ...new Array<number>(16).fill(0)], /extension/],
  ['ext 8', [0xc7, 0x01, 0x01, 0x00], /extension/],
  ['ext 16', [0xc8, 0x00, 0x01, 0x01, 0x00], /extension/],
  ['ext 32', [0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00], /extension/],
  ['a timestamp 32 (ext -1) as a map value', [0x81, 0xa1, 0x74, 0xd6, 0xff, 0, 0, 0, 0], /extension/],
  ['bin 8', [0xc4, 0x01, 0x00], /binary/],
  ['bin 16', [0xc5, 0x00, 0x01, 0x00], /binary/],
  ['bin 32', [0xc6, 0x00, 0x00, 0x00, 0x01, 0x00], /binary/],
  ['bin 8 inside an array', [0x91, 0xc4, 0x01, 0x00], /binary/],
  ['0xc1 (never used)', [0xc1], /not valid msgpack/],
  ['a lone UTF-8 continuation byte', [0xa1, 0x80], /UTF-8/],
  ['0xFF in a string', [0xa2, 0x62, 0xff], /UTF-8/],
  ['an overlong "/" (0xC0 0xAF)', [0xa2, 0xc0, 0xaf], /UTF-8/],
  ['a UTF-16 surrogate (0xED 0xA0 0x80)', [0xa3, 0xed, 0xa0, 0x80], /UTF-8/],
  ['a code point above U+10FFFF', [0xa4, 0xf4, 0x90, 0x80, 0x80], /UTF-8/],
  ['a multi-byte character cut off at the end of its string', [0x92, 0xa1, 0xc3, 0xa1, 0xa9], /UTF-8/],
  ['invalid UTF-8 in a map key', [0x81, 0xa1, 0xff, 0x01], /UTF-8/],
  ['a byte after a complete value', [0x80, 0xc0], /1 bytes follow/],
  ['two complete values', [0x01, 0x02], /follow/],
  ['an empty body', [], /truncated/],
  ['a fixmap missing its last value', [0x82, 0xa1, 0x61, 0x01, 0xa1, 0x62], /truncated/],
  ['a float 64 cut short', [0xcb, 0x3f, 0xf8], /truncated/],
  ['a uint 32 cut short', [0xce, 0x00, 0x01], /truncated/],
  ['a fixstr claiming 5 bytes with 1 present', [0xa5, 0x61], /truncated/],
  ['a str 16 header cut short', [0xda, 0x00], /truncated/],
  ['an array 16 claiming 3 items with 2 present', [0xdc, 0x00, 0x03, 0x01, 0x02], /truncated/],
  ['a "__proto__" key', [0x81, 0xa9, ...ascii('__proto__'), 0xc0], /__proto__/],
  ['a "constructor" key in a nested map', [0x81, 0xa1, 0x61, 0x81, 0xab, ...ascii('constructor'), 0x01], /constructor/],
  ['a "prototype" key', [0x81, 0xa9, ...ascii('prototype'), 0x80], /prototype/],
  ['an integer key', [0x81, 0x01, 0x01], /key/],
  ['a boolean key', [0x81, 0xc3, 0x01], /key/],
  ['seven levels of arrays', [0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0], /nesting deeper than 6/],
  ['seven levels of maps', [...new Array<number>(7).fill(0).flatMap(() => [0x81, 0xa1, 0x6b]), 0xc0], /nesting deeper than 6/],
  ['an array of 1025 nils', [0xdc, 0x04, 0x01, ...new Array<number>(1025).fill(0xc0)], /more than 1024 elements/],
  ['two arrays of 512 nils in one (1026 elements)', [0x92, ...[0, 1].flatMap(() => [0xdc, 0x02, 0x00, ...new Array<number>(512).fill(0xc0)])], /more than 1024 elements/],
  ['a map 16 of 513 entries (1026 keys and values)', [0xde, 0x02, 0x01, ...new Array<number>(513).fill(0).flatMap(() => [0xa1, 0x6b, 0xc0])], /more than 1024 elements/],
  ['a map 32 claiming 2^31 entries', [0xdf, 0x80, 0x00, 0x00, 0x00], /elements/],
];

for (const [what, bytes, message] of refused) {
  test(`${what} (${hex(bytes.slice(0, 6))}${bytes.length > 6 ? ' …' : ''}) is refused with BAD_FRAME saying why`, () => {
    const error = refusal(() => decodeBody(Buffer.from(bytes)));
    assert.is(error.code, 'BAD_FRAME');
    assert.is(error.id, undefined);
    assert.match(error.message, message);
    assertSentence(error.message, what);
  });
}

// The table the real-helper decoding suite sends over a socket.
for (const [what, body, mentions] of badFrames) {
  test(`${what}: decodeMessage refuses it with BAD_FRAME and no request id, as the helper replies`, () => {
    const error = refusal(() => decodeMessage(body));
    assert.is(error.code, 'BAD_FRAME');
    assert.is(error.id, undefined);
    if (mentions !== undefined) assert.match(error.message, mentions);
    assertSentence(error.message, what);
  });
}

test.run();
