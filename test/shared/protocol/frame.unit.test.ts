import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { FrameDecoder, encodeFrame } from '../../../shared/src/protocol/frame.js';
import { MAX_FRAME_BYTES } from '../../../shared/src/protocol/limits.js';

test('a frame split into single bytes comes out whole', () => {
  const frame = encodeFrame(Buffer.from('hello'));
  const decoder = new FrameDecoder();
  const out: Buffer[] = [];
  for (const byte of frame) out.push(...decoder.push(Buffer.from([byte])));
  assert.equal(out.map(String), ['hello']);
  assert.is(decoder.pending, false);
});

test('two frames in one chunk come out as two bodies', () => {
  const decoder = new FrameDecoder();
  const chunk = Buffer.concat([encodeFrame(Buffer.from('a')), encodeFrame(Buffer.from('bc'))]);
  assert.equal(decoder.push(chunk).map(String), ['a', 'bc']);
});

test('a zero length is refused before anything is allocated', () => {
  const decoder = new FrameDecoder();
  assert.throws(() => decoder.push(Buffer.from([0, 0, 0, 0])), /out of range/);
});

test('a length over 65536 is refused as soon as the header arrives', () => {
  const decoder = new FrameDecoder();
  const header = Buffer.alloc(4);
  header.writeUInt32BE(MAX_FRAME_BYTES + 1);
  assert.throws(() => decoder.push(header), /out of range/);
});

test('a partial frame is reported as pending', () => {
  const decoder = new FrameDecoder();
  decoder.push(Buffer.from([0, 0, 0, 5, 1]));
  assert.is(decoder.pending, true);
});

test('a body of exactly 65536 bytes is accepted', () => {
  const decoder = new FrameDecoder();
  const out = decoder.push(encodeFrame(Buffer.alloc(MAX_FRAME_BYTES, 1)));
  assert.is(out.length, 1);
  assert.is(out[0]?.length, MAX_FRAME_BYTES);
});

test.run();
