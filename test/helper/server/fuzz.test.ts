// A small, bounded, reproducible fuzz loop against the real helper: valid request frames mutated
// (bit flips anywhere, truncation, lying lengths, spliced bytes, random msgpack values, two frames
// in one write) and sent on fresh connections. For each, the helper must answer exactly as the
// wire contract says (an oracle built from the shared framing/decoding/validation code predicts
// the code and id of every reply to an invalid frame), every reply must be a valid reply, no tap
// may appear for an invalid request, and the helper must still serve at the end.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decodeMessage } from '../../../shared/src/protocol/decode.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { parseRequest } from '../../../shared/src/protocol/validate.js';
import {
  closeBench, fail, links, MapOf, mp, openBench, ownRecords, PATIENCE_MS, stillServes, type Bench, type MpValue,
} from './support.js';
import { waitFor } from '../../support/wait.js';
import { rawFrame, WireConnection, type Next } from './wire.js';

const ITERATIONS = 300;
const SEED = 0x5eed_2024;

let bench: Bench | undefined;
const b = (): Bench => bench ?? fail('no bench');

test.before(async () => {
  bench = await openBench();
});

test.after(async () => {
  await closeBench(bench);
});

/** mulberry32: small, fast, and the same sequence for the same seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = rng(SEED);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

const KEYS = ['v', 'id', 'op', 'bridges', 'nics', 'lifetime', 'handoff', 'ports', 'bridge', 'tap', 'queues', 'mac', '__proto__', 'constructor', 'x', ''];
const STRINGS = ['br0', 'br1', 'make-nics', 'ovs-cleanup', 'session', 'persistent', 'name', 'fd', '52:54:00:12:34:56', '-br0', 'lo', '', 'a'.repeat(16), 'br0;id', 'é', '..'];

function randomValue(depth: number): MpValue {
  const kind = int(depth > 2 ? 6 : 9);
  switch (kind) {
    case 0: return null;
    case 1: return random() < 0.5;
    case 2: return pick([0, 1, 2, -1, 127, 128, 255, 65535, 2 ** 32 - 1, 2 ** 32, -(2 ** 31), 1.5, Number.MAX_SAFE_INTEGER]);
    case 3: return pick(STRINGS);
    case 4: return Buffer.from(Array.from({ length: int(6) }, () => int(256))).toString('latin1');
    case 5: return int(1000);
    case 6: return Array.from({ length: int(4) }, () => randomValue(depth + 1));
    case 7: return new MapOf(Array.from({ length: int(5) }, () => [pick(KEYS), randomValue(depth + 1)] as const));
    default: return { v: 1, id: int(100), op: pick(['make-nics', 'ovs-cleanup']), [pick(KEYS)]: randomValue(depth + 1) };
  }
}

function validBody(id: number): Buffer {
  switch (int(5)) {
    case 0: return mp({ v: 1, id, op: 'make-nics', bridges: ['br0'] });
    case 4: return mp({ v: 1, id, op: 'make-nics', nics: [{ bridge: 'br0', queues: 1, mac: '52:54:00:12:34:56' }, { bridge: 'br1' }], handoff: 'name' });
    case 1: return mp({ v: 1, id, op: 'make-nics', bridges: ['br0', 'br1'], lifetime: 'session' });
    case 2: return mp({ v: 1, id, op: 'ovs-cleanup', ports: [{ bridge: 'br0', tap: 'xkvmabcdefgh' }] });
    default: return mp({ v: 1, id, op: 'make-nics', bridges: ['br1'], lifetime: 'session' });
  }
}

function flipBits(bytes: Buffer, count: number, from = 0): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < count && out.length > from; i += 1) {
    const at = from + int(out.length - from);
    out[at] = out[at]! ^ (1 << int(8));
  }
  return out;
}

/** One mutated stream of bytes (and what was done, for failure messages). */
function mutate(id: number): { what: string; bytes: Buffer } {
  const body = validBody(id);
  switch (int(8)) {
    case 0: return { what: 'bit flips in the body', bytes: rawFrame(flipBits(body, 1 + int(4))) };
    case 1: return { what: 'bit flips anywhere', bytes: flipBits(rawFrame(body), 1 + int(3)) };
    case 2: {
      const cut = int(body.length);
      return { what: `body truncated to ${cut}, length fixed`, bytes: rawFrame(body.subarray(0, cut)) };
    }
    case 3: {
      const length = pick([0, 1, body.length - 1, body.length + 1, 65536, 65537, 0xffffffff, int(70000)]);
      return { what: `length ${length} for ${body.length} bytes`, bytes: rawFrame(body, length) };
    }
    case 4: {
      const at = int(body.length);
      const junk = Buffer.from(Array.from({ length: 1 + int(4) }, () => int(256)));
      const spliced = random() < 0.5
        ? Buffer.concat([body.subarray(0, at), junk, body.subarray(at)])
        : Buffer.concat([body.subarray(0, at), body.subarray(Math.min(body.length, at + 1 + int(3)))]);
      return { what: 'bytes spliced in or out', bytes: rawFrame(spliced.length === 0 ? Buffer.from([0xc0]) : spliced) };
    }
    case 5: return { what: 'a random msgpack value', bytes: rawFrame(mp(randomValue(0))) };
    case 6: return { what: 'a valid frame then a mutated one', bytes: Buffer.concat([rawFrame(validBody(id)), rawFrame(flipBits(body, 2))]) };
    default: {
      const whole = rawFrame(body);
      return { what: 'a frame cut anywhere', bytes: whole.subarray(0, int(whole.length)) };
    }
  }
}

interface Oracle {
  /** The frames the helper will see completed, in order. */
  readonly frames: Buffer[];
  /** The stream breaks the framing after those frames (length out of range). */
  readonly badLength: boolean;
  /** Part of a frame follows them, which the helper waits for. */
  readonly pending: boolean;
}

function frames(bytes: Buffer): Oracle {
  const decoder = new FrameDecoder();
  try {
    return { frames: decoder.push(bytes), badLength: false, pending: decoder.pending };
  } catch {
    return { frames: [], badLength: true, pending: false };
  }
}

/** What the helper must answer to one complete frame: a fatal code, a request error, or "valid". */
function expected(body: Buffer): { fatal: true } | { code: string; id: number } | { valid: true } {
  let value;
  try {
    value = decodeMessage(body);
  } catch {
    return { fatal: true };
  }
  try {
    parseRequest(value);
    return { valid: true };
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { code: error.code, id: error.id ?? 0 };
  }
}

test(`${ITERATIONS} mutated requests (seed ${SEED}) get only valid replies as the contract predicts, create no tap unless valid, and the helper survives`, async () => {
  const { helper, ns } = b();
  let okMakeNics = 0;
  let replies = 0;
  let fatal = 0;
  for (let i = 0; i < ITERATIONS; i += 1) {
    const id = 1 + int(0xfffffff);
    const { what, bytes } = mutate(id);
    const context = `iteration ${i} (${what}: ${bytes.subarray(0, 48).toString('hex')}${bytes.length > 48 ? '…' : ''})`;
    const oracle = frames(bytes);
    const mark = helper.auditMark();
    const conn = await WireConnection.connect(helper.socket);
    await conn.write(bytes);
    const seen: Next[] = [];
    const taps: string[] = [];
    try {
      if (oracle.badLength) {
        // the helper refuses the whole chunk at the bad header: BAD_FRAME, then it closes
        for (let n = 0; n < 4; n += 1) {
          const next = await conn.next(PATIENCE_MS);
          seen.push(next);
          if (next.kind !== 'reply') break;
        }
        const last = seen[seen.length - 1];
        const reply = seen[seen.length - 2];
        assert.is(last?.kind, 'closed', `${context}: not closed after a bad length: ${JSON.stringify(seen)}`);
        assert.ok(reply?.kind === 'reply' && !reply.reply.ok && reply.reply.error.code === 'BAD_FRAME', `${context}: ${JSON.stringify(seen)}`);
        fatal += 1;
      } else {
        let closed = false;
        for (const body of oracle.frames) {
          const want = expected(body);
          const next = await conn.next(PATIENCE_MS);
          seen.push(next);
          if (next.kind !== 'reply') fail(`${context}: expected a reply to ${JSON.stringify(want)}, got ${JSON.stringify(next)}`);
          const reply = next.reply;
          replies += 1;
          if ('fatal' in want) {
            assert.ok(!reply.ok && reply.error.code === 'BAD_FRAME' && reply.id === 0, `${context}: expected BAD_FRAME id 0, got ${JSON.stringify(reply)}`);
            const after = await conn.next(PATIENCE_MS);
            assert.is(after.kind, 'closed', `${context}: not closed after BAD_FRAME`);
            fatal += 1;
            closed = true;
            break;
          }
          if ('code' in want) {
            assert.ok(!reply.ok && reply.error.code === want.code && reply.id === want.id,
              `${context}: expected ${want.code} id ${want.id}, got ${JSON.stringify(reply)}`);
          } else if (reply.ok && 'nics' in reply) {
            okMakeNics += 1;
            taps.push(...reply.nics.map((n) => n.tap));
          }
        }
        if (!closed) {
          // We stop sending. Had the helper answered the incomplete frame that may follow (it
          // must wait for the rest), that answer would come first; and it owes nothing more.
          conn.end();
          const next = await conn.next(PATIENCE_MS);
          seen.push(next);
          if (oracle.pending) {
            assert.ok(next.kind === 'reply' && !next.reply.ok && next.reply.error.code === 'BAD_FRAME' && next.reply.id === 0
              && /middle of a frame/.test(next.reply.error.message), `${context}: expected BAD_FRAME for the frame cut by the end, got ${JSON.stringify(next)}`);
            fatal += 1;
            assert.is((await conn.next(PATIENCE_MS)).kind, 'closed', `${context}: not closed after the end in mid-frame`);
          } else {
            assert.is(next.kind, 'closed', `${context}: more than the replies to its frames: ${JSON.stringify(next)}`);
          }
        }
      }
      for (const next of seen) assert.not.equal(next.kind, 'malformed', `${context}: a malformed reply: ${JSON.stringify(next)}`);
    } finally {
      conn.destroy();
    }
    if (taps.length > 0) {
      await waitFor(() => ownRecords(helper.auditSince(mark), { pids: [], taps }).some((r) => r.event === 'session-end'), PATIENCE_MS,
        { what: `${context}: the session to end` });
    }
    assert.equal(links(ns), b().baseline, `${context}: devices in the namespace`);
    assert.ok(helper.alive(), `${context}: the helper died`);
  }
  if (process.env['XKVM_FUZZ_STATS'] !== undefined) process.stdout.write(`fuzz: ${fatal} fatal, ${replies} replies, ${okMakeNics} ok make-nics\n`);
  // the loop exercised every path
  assert.ok(fatal > 20 && replies > 100, `fatal ${fatal}, replies ${replies}, ok make-nics ${okMakeNics}`);
  await waitFor(() => helper.stateFiles().length === 0, PATIENCE_MS, { what: 'every session record to be gone', describe: () => helper.stateFiles().join(' ') });
  // no make-nics succeeded without a matching ok reply
  assert.is(helper.audit().filter((r) => r.event === 'request' && r['op'] === 'make-nics' && r['result'] === 'ok').length, okMakeNics);
  await stillServes(b(), 'after the fuzz loop');
});

test.run();
