// Hostile framing against the real helper over its real socket (design.md, wire format: a 4-byte
// big-endian length N, 1 ≤ N ≤ 65536, then N bytes; too long, truncated, or slower than 5 s to
// complete: an error reply where possible, the connection closed, everyone else still served).
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { FRAME_DEADLINE_MS, MAX_FRAME_BYTES } from '../../../shared/src/protocol/limits.js';
import {
  assertError, assertNics, assertOneRecordFor, closeBench, hostile, links, makeNicsRequest, mp, openBench,
  sleep, stillServes, waitUntil, type Bench,
} from './support.js';
import { frameOf, rawFrame, WireConnection } from './wire.js';

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

function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length >>> 0);
  return h;
}

test('a frame length of 0 gets BAD_FRAME at once and the connection is closed', async () => {
  await hostile(b(), header(0), { code: 'BAD_FRAME', id: 0, closes: true, withinMs: 1000, mentions: /length/ }, 'length 0');
});

test('a frame length of 65537 gets BAD_FRAME as soon as the header arrives, without waiting for the body', async () => {
  await hostile(b(), header(MAX_FRAME_BYTES + 1), { code: 'BAD_FRAME', id: 0, closes: true, withinMs: 1000, mentions: /65537/ }, 'length 65537');
});

test('a frame length of 0xFFFFFFFF gets BAD_FRAME at once, even with body bytes following', async () => {
  await hostile(b(), header(0xffff_ffff), { code: 'BAD_FRAME', id: 0, closes: true, withinMs: 1000 }, 'length 0xFFFFFFFF');
  await hostile(b(), Buffer.concat([header(0xffff_ffff), Buffer.alloc(4096, 0x41)]),
    { code: 'BAD_FRAME', id: 0, closes: true, withinMs: 1000 }, 'length 0xFFFFFFFF with 4 KiB following');
});

test('a frame cut short by the client closing creates nothing, writes no session record, and the helper keeps serving', async () => {
  const { helper, ns } = b();
  const before = links(ns);
  const mark = helper.auditMark();
  const frame = frameOf(makeNicsRequest(b().id()));
  for (const cut of [2, 4, 4 + 5, frame.length - 1]) {
    const conn = await WireConnection.connect(helper.socket);
    await conn.write(frame.subarray(0, cut));
    await sleep(30);
    conn.destroy();
  }
  await sleep(100);
  assert.equal(links(ns), before, 'devices changed');
  assert.equal(helper.stateFiles(), [], 'a session record was written');
  assert.ok(helper.auditSince(mark).every((r) => r['result'] !== 'ok'), 'an audit record says ok');
  await stillServes(b(), 'truncated frames');
});

test('a frame cut short by the client\'s half-close gets a BAD_FRAME reply and leaves exactly one audit record', async () => {
  const { helper, ns } = b();
  const before = links(ns);
  const mark = helper.auditMark();
  const frame = frameOf(makeNicsRequest(b().id()));
  const conn = await WireConnection.connect(helper.socket);
  await conn.write(frame.subarray(0, frame.length - 3));
  conn.end();
  const next = await conn.next(2000);
  assert.equal(links(ns), before, 'devices changed');
  assert.equal(helper.stateFiles(), [], 'a session record was written');
  const reply = assertError(next, 'BAD_FRAME', 0, 'half-closed mid-frame');
  conn.destroy();
  const goods = await stillServes(b(), 'half-closed mid-frame');
  await helper.waitForAudit(mark, 1 + 2 * goods).catch(() => undefined);
  await sleep(30);
  assertOneRecordFor(helper.auditSince(mark), 2 * goods, reply, 'half-closed mid-frame');
});

test('a complete request followed at once by a half-close still gets its reply, and no tap exists that the caller was not told about', async () => {
  // what `printf ... | socat - UNIX-CONNECT:...` or `nc -N` do: write the request, shut down writing, read
  const { helper, ns } = b();
  const before = links(ns);
  const id = b().id();
  const conn = await WireConnection.connect(helper.socket);
  await conn.write(frameOf(makeNicsRequest(id, ['br0'], 'persistent')));
  conn.end();
  const next = await conn.next(3000);
  conn.destroy();
  await sleep(300);
  const made = links(ns).filter((l) => !before.includes(l));
  try {
    const told = next.kind === 'reply' && next.reply.ok && 'nics' in next.reply ? next.reply.nics.map((n) => n.tap) : [];
    assert.equal(made.filter((t) => !told.includes(t)), [], `taps created but never reported to the caller (the reply was ${JSON.stringify(next)})`);
    assertNics(next, id, ['br0'], ns, 'make-nics then half-close');
  } finally {
    for (const tap of made) ns.ip('link', 'del', tap);
  }
});

test('a started frame not completed within 5 s gets BAD_FRAME and is closed between 5 and 7 s, whether it stalls in the header, after it, or trickles', async () => {
  const { helper, ns } = b();
  const before = links(ns);
  const mark = helper.auditMark();
  const body = mp({ v: 1, id: 7, op: 'make-nics', bridges: ['br0'] });
  const full = rawFrame(body);
  const started = Date.now();
  const stalls = await Promise.all([0, 1, 2].map(() => WireConnection.connect(helper.socket)));
  const [afterHeader, inHeader, trickle] = stalls as [WireConnection, WireConnection, WireConnection];
  await afterHeader.write(full.subarray(0, 4));
  await inHeader.write(full.subarray(0, 2));
  await trickle.write(full.subarray(0, 5));
  // one more byte every 700 ms: each write is "progress", but the frame is never done in 5 s
  let sent = 5;
  const dripper = setInterval(() => {
    if (sent < full.length - 1) void trickle.write(full.subarray(sent, (sent += 1)));
  }, 700);
  try {
    // meanwhile the helper serves others promptly
    const other = await WireConnection.connect(helper.socket);
    const t0 = Date.now();
    const id = b().id();
    const nics = assertNics(await other.ask(makeNicsRequest(id)), id, ['br0'], ns, 'make-nics during the stalls');
    assert.ok(Date.now() - t0 < 2000, `make-nics took ${Date.now() - t0} ms while frames stalled`);
    other.destroy();
    await waitUntil('the session tap removed', () => !links(ns).includes(nics[0]!.tap), 2000);

    const labels = ['stalled after the header', 'stalled inside the header', 'trickling'];
    const outcomes = await Promise.all(stalls.map(async (conn, i) => {
      const next = await conn.next(FRAME_DEADLINE_MS + 4000);
      const elapsed = next.at - started;
      const reply = assertError(next, 'BAD_FRAME', 0, labels[i]!);
      assert.ok(elapsed >= FRAME_DEADLINE_MS - 50 && elapsed <= FRAME_DEADLINE_MS + 2000,
        `${labels[i]!}: the helper answered after ${elapsed} ms (expected 5–7 s)`);
      const close = await conn.next(1500);
      assert.is(close.kind, 'closed', `${labels[i]!}: not closed after the deadline: ${JSON.stringify(close)}`);
      return reply;
    }));
    assert.ok(outcomes.every((r) => /5 s|complet/.test(r.error.message)), `messages: ${outcomes.map((r) => r.error.message).join(' | ')}`);
  } finally {
    clearInterval(dripper);
    for (const c of stalls) c.destroy();
  }
  assert.equal(links(ns), before, 'devices changed');
  assert.equal(helper.stateFiles(), [], 'a session record was written');
  // the make-nics above: request + session-end; then one record per stalled connection
  const records = await helper.waitForAudit(mark, 5);
  const closed = records.filter((r) => r.event === 'connection');
  assert.is(closed.length, 3, `one record per stalled connection: ${JSON.stringify(records)}`);
  assert.ok(closed.every((r) => r['code'] === 'BAD_FRAME'));
  await stillServes(b(), 'after the stalls');
});

test('the 5 s limit applies to each frame: a client whose frames each complete in under 3 s is not cut off', async () => {
  const { helper } = b();
  const ids = [b().id(), b().id(), b().id()];
  // invalid requests on purpose (an unknown key): each gets a reply, nothing is created
  const frames = ids.map((id) => frameOf({ v: 1, id, op: 'make-nics', bridges: ['br0'], pad: 'x'.repeat(20) }));
  const conn = await WireConnection.connect(helper.socket);
  const half = (f: Buffer): [Buffer, Buffer] => [f.subarray(0, 10), f.subarray(10)];
  const [a1, a2] = half(frames[1]!);
  const [b1, b2] = half(frames[2]!);
  await conn.write(Buffer.concat([frames[0]!, a1])); // frame 1 done, frame 2 started at 0 s
  assertError(await conn.next(1000), 'BAD_REQUEST', ids[0]!, 'first frame');
  await sleep(2600);
  await conn.write(Buffer.concat([a2, b1])); // frame 2 done after 2.6 s, frame 3 started at 2.6 s
  assertError(await conn.next(1000), 'BAD_REQUEST', ids[1]!, 'second frame');
  await sleep(2600);
  await conn.write(b2); // frame 3 done after 2.6 s (5.2 s after the first byte of frame 2)
  const third = await conn.next(1000);
  conn.destroy();
  assert.ok(third.kind === 'reply' && third.reply.id === ids[2],
    `the third frame, completed 2.6 s after it started, was refused: ${JSON.stringify(third)}`);
  assertError(third, 'BAD_REQUEST', ids[2]!, 'third frame');
});

test('a frame body of exactly 65536 bytes passes the framing and is refused as a bad request, on a connection that stays usable', async () => {
  const id = b().id();
  const base = mp({ v: 1, id, op: 'make-nics', bridges: ['br0'], pad: '' });
  // grow the pad string so that the whole body is exactly 65536 bytes (str16: 3-byte header)
  const padLength = MAX_FRAME_BYTES - (base.length - 1) - 3;
  const body = mp({ v: 1, id, op: 'make-nics', bridges: ['br0'], pad: 'x'.repeat(padLength) });
  assert.is(body.length, MAX_FRAME_BYTES);
  await hostile(b(), rawFrame(body), { code: 'BAD_REQUEST', id, closes: false, mentions: /pad/ }, '65536-byte frame');
});

test('several frames in one write are answered in order, one reply each, and only the valid one creates a tap', async () => {
  const { helper, ns } = b();
  const before = links(ns);
  const mark = helper.auditMark();
  const [bad1, good, bad2] = [b().id(), b().id(), b().id()];
  const conn = await WireConnection.connect(helper.socket);
  await conn.write(Buffer.concat([
    frameOf({ v: 1, id: bad1, op: 'make-nics', bridges: ['-br0'] }),
    frameOf(makeNicsRequest(good)),
    frameOf({ v: 1, id: bad2, op: 'make-everything', bridges: ['br0'] }),
  ]));
  assertError(await conn.next(), 'BAD_NAME', bad1, 'first frame');
  const nics = assertNics(await conn.next(), good, ['br0'], ns, 'second frame');
  assertError(await conn.next(), 'UNKNOWN_OP', bad2, 'third frame');
  assert.equal(links(ns), [...before, nics[0]!.tap].sort(), 'only the valid request created a device');
  assert.is(conn.closed, false);
  conn.destroy();
  await waitUntil('the session tap removed', () => !links(ns).includes(nics[0]!.tap), 2000);
  const records = await helper.waitForAudit(mark, 4);
  await sleep(30);
  assert.equal(helper.auditSince(mark).map((r) => `${r.event}:${String(r['result'])}`),
    ['request:rejected', 'request:ok', 'request:rejected', 'session-end:ok'], JSON.stringify(records));
  await stillServes(b(), 'after several frames in one write');
});

test('one frame split across many writes (single bytes, then random pieces) is served as one request', async () => {
  const { helper, ns } = b();
  for (const mode of ['bytes', 'pieces'] as const) {
    const id = b().id();
    const frame = frameOf(makeNicsRequest(id));
    const conn = await WireConnection.connect(helper.socket);
    let at = 0;
    let seed = 7;
    while (at < frame.length) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = mode === 'bytes' ? 1 : 1 + (seed % 7);
      await conn.write(frame.subarray(at, at + n));
      at += n;
      await sleep(mode === 'bytes' ? 2 : 20);
    }
    const nics = assertNics(await conn.next(), id, ['br0'], ns, `split into ${mode}`);
    conn.destroy();
    await waitUntil('the session tap removed', () => !links(ns).includes(nics[0]!.tap) && helper.stateFiles().length === 0, 2000);
  }
});

test('one bad client never disturbs another: while others send garbage, stall mid-frame or flood, make-nics completes promptly', async () => {
  const { helper, ns } = b();
  const before = links(ns);
  const records = helper.stateFiles().length;
  const slow = await WireConnection.connect(helper.socket);
  await slow.write(Buffer.concat([header(200), Buffer.alloc(10, 0x82)]));
  const garbage = await WireConnection.connect(helper.socket);
  await garbage.write(rawFrame(Buffer.from([0xc1, 0xc1, 0xc1])));
  const huge = await WireConnection.connect(helper.socket);
  await huge.write(header(0xffff_fff0));
  const flood = await WireConnection.connect(helper.socket);
  const many: Buffer[] = [];
  for (let i = 0; i < 200; i += 1) many.push(frameOf({ v: 1, id: i, op: 'make-nics', bridges: ['no such'] }));
  void flood.write(Buffer.concat(many));
  const good = await WireConnection.connect(helper.socket);
  const t0 = Date.now();
  const id = b().id();
  const next = await good.ask(makeNicsRequest(id));
  const took = Date.now() - t0;
  const nics = assertNics(next, id, ['br0'], ns, 'make-nics among bad clients');
  // promptly: well before the stalled client's 5 s deadline could have freed anything
  assert.ok(took < 2000, `make-nics took ${took} ms among bad clients`);
  assertError(await garbage.next(), 'BAD_FRAME', 0, 'garbage client');
  assertError(await huge.next(), 'BAD_FRAME', 0, 'huge-length client');
  assert.is(slow.closed, false, 'the stalled client is still waiting for its deadline');
  for (const c of [slow, garbage, huge, flood, good]) c.destroy();
  // The tap leaves the device list before its removal returns; the record goes after that.
  await waitUntil('the session tap and record removed', () => !links(ns).includes(nics[0]!.tap) && helper.stateFiles().length === records, 2000);
  assert.equal(links(ns), before);
  await stillServes(b(), 'after the bad clients');
});

test.run();
