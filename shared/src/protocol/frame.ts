import { ErrorCode } from './codes.js';
import { ProtocolError } from './error.js';
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from './limits.js';

/** Prefix `body` with its 4-byte big-endian length. */
export function encodeFrame(body: Uint8Array): Buffer {
  if (body.length < 1 || body.length > MAX_FRAME_BYTES) {
    throw new ProtocolError(
      ErrorCode.BadFrame,
      `a frame body must be 1 to ${MAX_FRAME_BYTES} bytes, this one is ${body.length}`,
    );
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Splits a byte stream into frame bodies. The length is checked before any buffer for the
 * body is allocated; a bad length throws and the stream must then be closed (framing is lost).
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;

  /** True while part of a frame (header or body) has arrived but not all of it. */
  get pending(): boolean {
    return this.#buffered > 0;
  }

  /** Feed bytes; returns every frame body completed by them, in order. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.#buffered < FRAME_HEADER_BYTES) return frames;
      const length = this.#peekLength();
      if (length < 1 || length > MAX_FRAME_BYTES) {
        this.#chunks = [];
        this.#buffered = 0;
        throw new ProtocolError(
          ErrorCode.BadFrame,
          `frame length ${length} is out of range (1 to ${MAX_FRAME_BYTES} bytes)`,
        );
      }
      if (this.#buffered < FRAME_HEADER_BYTES + length) return frames;
      this.#take(FRAME_HEADER_BYTES);
      frames.push(this.#take(length));
    }
  }

  #peekLength(): number {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= FRAME_HEADER_BYTES) return first.readUInt32BE(0);
    const header = Buffer.concat(this.#chunks, this.#buffered).subarray(0, FRAME_HEADER_BYTES);
    return header.readUInt32BE(0);
  }

  #take(count: number): Buffer {
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const head = this.#chunks[0];
      if (head === undefined) throw new Error('FrameDecoder: ran out of buffered bytes');
      const n = Math.min(head.length, count - filled);
      head.copy(out, filled, 0, n);
      filled += n;
      if (n === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(n);
    }
    this.#buffered -= count;
    return out;
  }
}
