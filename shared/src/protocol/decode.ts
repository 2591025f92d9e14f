import { Packr, Unpackr } from 'msgpackr';
import { ErrorCode } from './codes.js';
import { ProtocolError } from './error.js';

/**
 * Strict msgpack for the wire. msgpackr is lenient by default (extension types, records,
 * BigInt, objects built with `__proto__` keys), so each frame body is first walked byte by byte
 * (structure, nesting, counts, no extension or binary types, valid UTF-8), then unpacked once
 * into Maps, then turned into null-prototype objects with dangerous keys refused.
 */
const MAX_DEPTH = 6;
const MAX_ELEMENTS = 1024;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const unpackr = new Unpackr({ mapsAsObjects: false, useRecords: false, int64AsType: 'number' });
const packr = new Packr({ useRecords: false, variableMapSize: true });
const utf8 = new TextDecoder('utf-8', { fatal: true });

export type WireValue = null | boolean | number | string | WireValue[] | WireMap;
export interface WireMap { [key: string]: WireValue }

function bad(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError(ErrorCode.BadFrame, message, cause === undefined ? {} : { cause });
}

/**
 * Check that `body` holds exactly one well-formed msgpack value of the allowed kinds; returns
 * how many key/value pairs its maps declare, all maps together.
 */
function scanMsgpack(body: Uint8Array): number {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let pos = 0;
  let elements = 0;
  let pairs = 0;
  // Each stack entry: how many values the open container still expects.
  const stack: number[] = [];

  const need = (n: number): void => {
    if (pos + n > body.length) throw bad('the msgpack value is truncated');
  };
  const openMap = (count: number): void => {
    pairs += count;
    open(count * 2);
  };
  const open = (count: number): void => {
    elements += count;
    if (elements > MAX_ELEMENTS) throw bad(`more than ${MAX_ELEMENTS} elements in one frame`);
    if (stack.length >= MAX_DEPTH) throw bad(`nesting deeper than ${MAX_DEPTH} levels`);
    stack.push(count);
  };
  const text = (n: number): void => {
    need(n);
    try {
      utf8.decode(body.subarray(pos, pos + n));
    } catch (cause) {
      throw bad('a string is not valid UTF-8', cause);
    }
    pos += n;
  };

  let first = true;
  while (first || stack.length > 0) {
    first = false;
    // Close every container that has received all its values.
    while (stack.length > 0 && stack[stack.length - 1] === 0) stack.pop();
    if (stack.length === 0 && pos > 0) break;
    if (stack.length > 0) stack[stack.length - 1]! -= 1;

    need(1);
    const tag = body[pos++]!;
    if (tag <= 0x7f || tag >= 0xe0) continue; // fixint
    if (tag >= 0x80 && tag <= 0x8f) { openMap(tag & 0x0f); continue; }
    if (tag >= 0x90 && tag <= 0x9f) { open(tag & 0x0f); continue; }
    if (tag >= 0xa0 && tag <= 0xbf) { text(tag & 0x1f); continue; }
    switch (tag) {
      case 0xc0: case 0xc2: case 0xc3: break;
      case 0xca: need(4); pos += 4; break;
      case 0xcb: need(8); pos += 8; break;
      case 0xcc: case 0xd0: need(1); pos += 1; break;
      case 0xcd: case 0xd1: need(2); pos += 2; break;
      case 0xce: case 0xd2: need(4); pos += 4; break;
      case 0xcf: case 0xd3: need(8); pos += 8; break;
      case 0xd9: need(1); pos += 1; text(view.getUint8(pos - 1)); break;
      case 0xda: need(2); pos += 2; text(view.getUint16(pos - 2)); break;
      case 0xdb: need(4); pos += 4; text(view.getUint32(pos - 4)); break;
      case 0xdc: need(2); pos += 2; open(view.getUint16(pos - 2)); break;
      case 0xdd: need(4); pos += 4; open(view.getUint32(pos - 4)); break;
      case 0xde: need(2); pos += 2; openMap(view.getUint16(pos - 2)); break;
      case 0xdf: need(4); pos += 4; openMap(view.getUint32(pos - 4)); break;
      case 0xc4: case 0xc5: case 0xc6:
        throw bad('binary values are not allowed');
      case 0xc7: case 0xc8: case 0xc9:
      case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        throw bad('msgpack extension types are not allowed');
      default:
        throw bad(`byte 0x${tag.toString(16)} is not valid msgpack`);
    }
  }
  while (stack.length > 0 && stack[stack.length - 1] === 0) stack.pop();
  if (stack.length > 0) throw bad('the msgpack value is truncated');
  if (pos !== body.length) throw bad(`${body.length - pos} bytes follow the msgpack value`);
  return pairs;
}

/** `value` as plain data; `counted.pairs` grows by every map entry met. */
function toPlain(value: unknown, counted: { pairs: number }): WireValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  // int64AsType 'number': 64-bit integers arrive as (possibly inexact) doubles; validation
  // refuses them by range.
  if (typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map((item) => toPlain(item, counted));
  if (value instanceof Map) {
    const out: { [key: string]: WireValue } = Object.create(null) as { [key: string]: WireValue };
    for (const [key, item] of value as Map<unknown, unknown>) {
      if (typeof key !== 'string') throw bad('map keys must be strings');
      if (FORBIDDEN_KEYS.has(key)) throw bad(`the key "${key}" is not allowed`);
      counted.pairs += 1;
      out[key] = toPlain(item, counted);
    }
    return out;
  }
  throw bad('an unsupported msgpack value');
}

/**
 * Decode one frame body strictly into plain data (maps become null-prototype objects).
 * @internal The program decodes messages (decodeMessage); the unit suite checks exact values of
 * every kind with it.
 */
export function decodeBody(body: Uint8Array): WireValue {
  const declared = scanMsgpack(body);
  let value: unknown;
  try {
    value = unpackr.unpack(body);
  } catch (cause) {
    throw bad('the frame is not valid msgpack', cause);
  }
  const counted = { pairs: 0 };
  const plain = toPlain(value, counted);
  // The unpacker keeps the last of two equal keys: fewer entries than declared means a repeat,
  // which two readers could understand differently.
  if (counted.pairs !== declared) throw bad('a map holds the same key twice');
  return plain;
}

/** Decode one frame body that must hold one map, as every message does (else BAD_FRAME). */
export function decodeMessage(body: Uint8Array): WireMap {
  const value = decodeBody(body);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('a frame must hold one msgpack map');
  return value;
}

/** Encode a message (plain objects and arrays of strings, numbers, booleans). */
export function encodeBody(message: object): Buffer {
  return packr.pack(message);
}
