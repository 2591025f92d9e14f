// Hostile framing against the real helper over its real socket (docs/protocol.md, wire format: a 4-byte
// big-endian length N, 1 ≤ N ≤ 65536, then N bytes; too long, truncated, or slower than 5 s to
// complete: an error reply where possible, the connection closed, everyone else still served).
// Nothing here measures time: the exact frame deadline is test/helper/transport/frame-deadline.unit.test.ts,
// with a mocked clock; here a stalled frame only has to end in BAD_FRAME while others are served.
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { FRAME_DEADLINE_MS, MAX_FRAME_BYTES } from '../../../shared/src/protocol/limits.js';
import {
  assertError, assertNics, assertOneRecordFor, hostile, useBench, links, makeNicsRequest, mp, ownRecords,
  ownRecordsSince, PATIENCE_MS, stillServes,
} from './support.js';
import { waitFor } from '../../support/wait.js';
import { frameOf, rawFrame, WireConnection } from './wire.js';

const b = useBench(test);

function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length >>> 0);
  return h;
}

// A reply naming the length (not the frame deadline's "not completed") shows the helper did not
// wait for a body it will never accept.
test('a frame length of 0 gets BAD_FRAME naming the length and the connection is closed', async () => {
  await hostile(b(), header(0), { code: 'BAD_FRAME', id: 0, closes: true, mentions: /length 0 is out of range/ }, 'length 0');
});

test('a frame length of 65537 gets BAD_FRAME naming the length as soon as the header arrives, without waiting for the body', async () => {
  await hostile(b(), header(MAX_FRAME_BYTES + 1), { code: 'BAD_FRAME', id: 0, closes: true, mentions: /length 65537 is out of range/ }, 'length 65537');
});

test('a frame length of 0xFFFFFFFF gets BAD_FRAME naming the length, even with body bytes following', async () => {
  await hostile(b(), header(0xffff_ffff), { code: 'BAD_FRAME', id: 0, closes: true, mentions: /length 4294967295 is out of range/ }, 'length 0xFFFFFFFF');
  await hostile(b(), Buffer.concat([header(0xffff_ffff), Buffer.alloc(4096, 0x41)]),
    { code: 'BAD_FRAME', id: 0, closes: true, mentions: /length 4294967295 is out of range/ }, 'length 0xFFFFFFFF with 4 KiB following');
});

test('a frame cut short by the client closing is audited as a broken frame, creates nothing, writes no session record, and the helper keeps serving', async () => {
  const { helper, ns } = b();
  const before = links(ns);
  const mark = helper.auditMark();
  const id = b().id();
  const frame = frameOf(makeNicsRequest(id));
  const cuts = [2, 4, 4 + 5, frame.length - 1];
  for (const cut of cuts) {
    const conn = await WireConnection.connect(helper.socket);
    await conn.write(frame.subarray(0, cut));
    conn.destroy();
  }
  // the helper reads each connection's bytes, then its end in the middle of a frame
  const records = await ownRecordsSince(helper, mark, { pids: [process.pid], ids: [id] }, cuts.length);
  assert.equal(records.map((r) => `${r.event}:${String(r['code'])}`), cuts.map(() => 'connection:BAD_FRAME'), JSON.stringify(records));
  assert.equal(links(ns), before, 'devices changed');
  assert.equal(helper.stateFiles(), [], 'a session record was written');
  await stillServes(b(), 'truncated frames');
  assert.is(ownRecords(helper.auditSince(mark), { pids: [process.pid], ids: [id] }).length, cuts.length, 'more records of the cut frames');
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
  const served = await stillServes(b(), 'half-closed mid-frame');
  const own = { pids: [process.pid], ids: served.ids, taps: served.taps };
  assertOneRecordFor(await ownRecordsSince(helper, mark, own, 1 + 2 * served.requests), 2 * served.requests, reply, 'half-closed mid-frame');
});

test('a complete request followed at once by a half-close still gets its reply, and no tap exists that the caller was not told about', async () => {
  // what `printf ... | socat - UNIX-CONNECT:...` or `nc -N` do: write the request, shut down writing, read
  const { helper, ns } = b();
  const before = links(ns);
  const mark = helper.auditMark();
  const id = b().id();
  const conn = await WireConnection.connect(helper.socket);
  await conn.write(frameOf(makeNicsRequest(id, ['br0'], 'persistent')));
  conn.end();
  const next = await conn.next(PATIENCE_MS);
  conn.destroy();
  // the request's record is written once its taps are made (or refused): then nothing more comes
  await ownRecordsSince(helper, mark, { pids: [process.pid], ids: [id] }, 1);
  const made = links(ns).filter((l) => !before.includes(l));
  try {
    const told = next.kind === 'reply' && next.reply.ok && 'nics' in next.reply ? next.reply.nics.map((n) => n.tap) : [];
    assert.equal(made.filter((t) => !told.includes(t)), [], `taps created but never reported to the caller (the reply was ${JSON.stringify(next)})`);
    assertNics(next, id, ['br0'], ns, 'make-nics then half-close');
  } finally {
    for (const tap of made) ns.ip('link', 'del', tap);
  }
});

test('frames that stall (in the header, after it, or trickling in) end in BAD_FRAME and a closed connection, while another client is served meanwhile', async () => {
  const { helper, ns } = b();
  const before = links(ns);
  const mark = helper.auditMark();
  const body = mp({ v: 1, id: 7, op: 'make-nics', bridges: ['br0'] });
  const full = rawFrame(body);
  const stalls = await Promise.all([0, 1, 2].map(() => WireConnection.connect(helper.socket)));
  const [afterHeader, inHeader, trickle] = stalls as [WireConnection, WireConnection, WireConnection];
  await afterHeader.write(full.subarray(0, 4));
  await inHeader.write(full.subarray(0, 2));
  await trickle.write(full.subarray(0, 5));
  // one more byte now and then: each write is progress, but the frame is never completed
  let sent = 5;
  const dripper = setInterval(() => {
    if (sent < full.length - 1) void trickle.write(full.subarray(sent, (sent += 1)));
  }, 500);
  try {
    // meanwhile the helper serves others: their make-nics is answered while every stall is still open
    const other = await WireConnection.connect(helper.socket);
    const id = b().id();
    const nics = assertNics(await other.ask(makeNicsRequest(id)), id, ['br0'], ns, 'make-nics during the stalls');
    assert.equal(stalls.map((c) => c.closed), [false, false, false], 'a stalled connection was closed before the other client was served');
    other.destroy();
    await waitFor(() => !links(ns).includes(nics[0]!.tap), PATIENCE_MS, { what: 'the session tap to be removed' });

    const labels = ['stalled after the header', 'stalled inside the header', 'trickling'];
    const outcomes = await Promise.all(stalls.map(async (conn, i) => {
      const reply = assertError(await conn.next(FRAME_DEADLINE_MS + PATIENCE_MS), 'BAD_FRAME', 0, labels[i]!);
      const close = await conn.next(PATIENCE_MS);
      assert.is(close.kind, 'closed', `${labels[i]!}: not closed after BAD_FRAME: ${JSON.stringify(close)}`);
      return reply;
    }));
    assert.ok(outcomes.every((r) => /not completed within 5 s/.test(r.error.message)), `messages: ${outcomes.map((r) => r.error.message).join(' | ')}`);
  } finally {
    clearInterval(dripper);
    for (const c of stalls) c.destroy();
  }
  assert.equal(links(ns), before, 'devices changed');
  assert.equal(helper.stateFiles(), [], 'a session record was written');
  const closed = (await ownRecordsSince(helper, mark, { pids: [process.pid], ids: [] }, 3)).filter((r) => r.event === 'connection');
  assert.is(closed.length, 3, `one record per stalled connection: ${JSON.stringify(closed)}`);
  assert.ok(closed.every((r) => r['code'] === 'BAD_FRAME'));
  await stillServes(b(), 'after the stalls');
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
  const own = { pids: [process.pid], ids: [bad1, good, bad2], taps: nics.map((n) => n.tap) };
  // the session's end is the last of them
  const records = await ownRecordsSince(helper, mark, own, 4);
  assert.equal(records.map((r) => `${r.event}:${String(r['result'])}`),
    ['request:rejected', 'request:ok', 'request:rejected', 'session-end:ok'], JSON.stringify(records));
  assert.not.ok(links(ns).includes(nics[0]!.tap), 'the session tap is left');
  await stillServes(b(), 'after several frames in one write');
});

// (Whether the helper reads these writes one by one is the kernel's business; connection.test.ts
// feeds a connection one byte per read.)
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
    }
    const nics = assertNics(await conn.next(), id, ['br0'], ns, `split into ${mode}`);
    conn.destroy();
    await waitFor(() => !links(ns).includes(nics[0]!.tap) && helper.stateFiles().length === 0, PATIENCE_MS, { what: 'the session tap and record to be removed' });
  }
});

test('one bad client never disturbs another: while others send garbage, stall mid-frame or flood, make-nics is served before the stalled frame is even cut off', async () => {
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
  const id = b().id();
  const nics = assertNics(await good.ask(makeNicsRequest(id)), id, ['br0'], ns, 'make-nics among bad clients');
  // served while the stalled client still waits for its frame deadline, which frees nothing anyway
  assert.is(slow.closed, false, 'the stalled client was cut off before make-nics was answered');
  assertError(await garbage.next(), 'BAD_FRAME', 0, 'garbage client');
  assertError(await huge.next(), 'BAD_FRAME', 0, 'huge-length client');
  for (const c of [slow, garbage, huge, flood, good]) c.destroy();
  // The tap leaves the device list before its removal returns; the record goes after that.
  await waitFor(() => !links(ns).includes(nics[0]!.tap) && helper.stateFiles().length === records, PATIENCE_MS, { what: 'the session tap and record to be removed' });
  assert.equal(links(ns), before);
  await stillServes(b(), 'after the bad clients');
});

test.run();
