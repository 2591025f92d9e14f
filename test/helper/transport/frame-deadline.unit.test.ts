// The frame deadline of one connection (helper/src/transport/connection.ts), exactly, without waiting
// for it: a Connection over in-memory streams with node:test's mock timers, so "not a millisecond
// before the deadline, and at it" is checked by moving the clock, not by the wall clock. (The real
// helper over its socket is test/helper/server/framing.test.ts: it only checks that a stalled
// connection is eventually closed and that nobody else notices.)
import { mock } from 'node:test';
import { PassThrough } from 'node:stream';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeBody, type WireValue } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { FRAME_DEADLINE_MS } from '../../../shared/src/protocol/limits.js';
import { Connection } from '../../../helper/src/transport/connection.js';
import type { Service } from '../../../helper/src/requests/service.js';
import { test } from '../../support/suite.js';
import { caller, MemoryAudit } from '../requests/stand-ins.js';

/** Every request here is refused before it reaches the service (an unknown key); sessions end empty. */
const NO_SERVICE = {
  handle: () => {
    throw new Error('these requests never reach the service');
  },
  endSession: async () => undefined,
} as unknown as Service;

interface Peer {
  /** Bytes from the client. */
  send(bytes: Uint8Array): Promise<void>;
  /** The replies so far, decoded. */
  readonly replies: Array<Record<string, WireValue>>;
  readonly audit: MemoryAudit;
  /** The connection called its transport's close. */
  closed(): boolean;
}

/** Lets the connection act on what happened (stream events, promises, its setImmediate). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

function connect(deadlineMs?: number): Peer {
  const input = new PassThrough();
  const output = new PassThrough();
  const decoder = new FrameDecoder();
  const replies: Array<Record<string, WireValue>> = [];
  output.on('data', (chunk: Buffer) => {
    for (const body of decoder.push(chunk)) replies.push(decodeMessage(body) as Record<string, WireValue>);
  });
  const audit = new MemoryAudit();
  let closed = false;
  new Connection({
    input, output, audit, service: NO_SERVICE,
    close: () => { closed = true; },
    identify: async () => caller('alice', 4101),
    log: (message) => { throw new Error(`unexpected internal error: ${message}`); },
    newSessionId: () => 'test-session',
    ...(deadlineMs === undefined ? {} : { deadlineMs }),
  });
  return {
    async send(bytes) {
      input.write(bytes);
      await settle();
    },
    replies, audit, closed: () => closed,
  };
}

/** A complete request frame that the helper refuses as BAD_REQUEST (and keeps the connection). */
function refusedFrame(id: number): Buffer {
  return encodeFrame(encodeBody({ v: 1, id, op: 'make-nics', bridges: ['br0'], pad: 'x' }));
}

/** Move the mocked clock and let the connection react. */
async function advance(ms: number): Promise<void> {
  mock.timers.tick(ms);
  await settle();
}

function assertOpen(peer: Peer, context: string): void {
  assert.not.ok(peer.closed(), `${context}: closed`);
  assert.not.ok(peer.replies.some((r) => (r['error'] as { code?: unknown } | undefined)?.code === 'BAD_FRAME'), `${context}: ${JSON.stringify(peer.replies)}`);
}

function assertCutOff(peer: Peer, message: RegExp, context: string): void {
  const last = peer.replies[peer.replies.length - 1];
  assert.equal(last?.['id'], 0, `${context}: ${JSON.stringify(peer.replies)}`);
  const error = last?.['error'] as { code?: unknown; message?: unknown } | undefined;
  assert.is(error?.code, 'BAD_FRAME', context);
  assert.match(String(error?.message), message, context);
  assert.ok(peer.closed(), `${context}: the connection is still open`);
  const records = peer.audit.records.filter((r) => r.event === 'connection');
  assert.is(records.length, 1, `${context}: ${JSON.stringify(peer.audit.records)}`);
  assert.is(records[0]?.['code'], 'BAD_FRAME');
}

test.before.each(() => {
  mock.timers.enable({ apis: ['setTimeout'] });
});

test.after.each(() => {
  mock.timers.reset();
});

test('a frame stalled inside its header, after it, or inside its body is cut off exactly at the injected deadline, with BAD_FRAME and an audit record', async () => {
  const frame = refusedFrame(1);
  for (const [what, cut] of [['inside the header', 2], ['after the header', 4], ['inside the body', 9]] as const) {
    const peer = connect(1500);
    await peer.send(frame.subarray(0, cut));
    await advance(1499);
    assertOpen(peer, `${what}, 1 ms before the deadline`);
    await advance(1);
    assertCutOff(peer, /not completed within 1\.5 s/, `${what}, at the deadline`);
  }
});

test('bytes trickling in do not move the deadline: it counts from the frame\'s first byte', async () => {
  const frame = refusedFrame(2);
  const peer = connect(1000);
  await peer.send(frame.subarray(0, 1));
  for (let at = 1; at < 4; at += 1) {
    await advance(300);
    await peer.send(frame.subarray(at, at + 1));
  }
  assertOpen(peer, 'after 900 ms of progress');
  await advance(100);
  assertCutOff(peer, /within 1 s/, 'at 1000 ms');
});

test('each frame has its own deadline: frames that each complete within it are all answered, however long the connection lasts', async () => {
  const frames = [refusedFrame(11), refusedFrame(12), refusedFrame(13)];
  const [second, third] = [frames[1]!, frames[2]!];
  const peer = connect(1000);
  await peer.send(Buffer.concat([frames[0]!, second.subarray(0, 10)]));
  await advance(999);
  await peer.send(Buffer.concat([second.subarray(10), third.subarray(0, 10)]));
  await advance(999);
  await peer.send(third.subarray(10));
  assertOpen(peer, 'after three frames in 1998 ms');
  assert.equal(peer.replies.map((r) => [r['id'], (r['error'] as { code?: unknown } | undefined)?.code]),
    [[11, 'BAD_REQUEST'], [12, 'BAD_REQUEST'], [13, 'BAD_REQUEST']]);
});

test('a frame arriving one byte per read is served as one request, and two frames in one read as two', async () => {
  const peer = connect(1000);
  const frame = refusedFrame(41);
  for (const byte of frame) await peer.send(Buffer.from([byte]));
  await peer.send(Buffer.concat([refusedFrame(42), refusedFrame(43)]));
  assert.equal(peer.replies.map((r) => r['id']), [41, 42, 43]);
  assertOpen(peer, 'after the frames');
});

test('a connection with no frame in progress has no deadline, before its first frame and between frames', async () => {
  const peer = connect(1000);
  await advance(60_000);
  assertOpen(peer, 'an idle new connection');
  await peer.send(refusedFrame(21));
  await advance(60_000);
  assertOpen(peer, 'idle after a complete frame');
  assert.is(peer.replies.length, 1);
});

test('without an injected deadline the limit is the wire contract\'s FRAME_DEADLINE_MS (5 s)', async () => {
  const peer = connect();
  await peer.send(refusedFrame(31).subarray(0, 4));
  await advance(FRAME_DEADLINE_MS - 1);
  assertOpen(peer, '1 ms before 5 s');
  await advance(1);
  assertCutOff(peer, /within 5 s/, 'at 5 s');
});

test.run();
