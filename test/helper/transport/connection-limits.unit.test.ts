// What one client may cost a Connection (helper/src/transport/connection.ts), over in-memory
// streams with a stand-in service: a connection holding no session taps is closed after the idle
// time, one holding taps never is; after 8 refused requests in a row the connection is closed
// (a success in between starts the count again); while more reply bytes than the bound wait for
// the client, nothing more is read or served, and serving resumes once the client reads.
import { PassThrough } from 'node:stream';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import type { Reply, Request } from '../../../shared/src/protocol/messages.js';
import { MemoryAudit } from '../requests/stand-ins.js';
import type { Caller } from '../../../helper/src/identity/caller.js';
import type { Session } from '../../../helper/src/requests/service.js';
import { Connection, type ConnectionOptions } from '../../../helper/src/transport/connection.js';

const CALLER: Caller = {
  uid: 4201, gid: 4201, pid: process.pid, start: 1n, transport: 'socket',
  user: { name: 'mallory', uid: 4201, gid: 4201, groups: ['mallory'] },
};

type Handle = (request: Request, session: Session) => Promise<Reply>;

interface Rig {
  readonly input: PassThrough;
  readonly output: PassThrough;
  readonly audit: MemoryAudit;
  /** Requests the service was asked, in order. */
  readonly handled: number[];
  /** Whether the connection has ended (onClosed ran). */
  closed(): boolean;
  send(request: object): void;
  /** The replies the client has read so far (reading the output, unless `unread`). */
  replies(): Reply[];
}

function rig(handle: Handle, options: Partial<ConnectionOptions> & { unread?: boolean } = {}): Rig {
  const input = new PassThrough();
  // Small buffers, so that a client that does not read fills them quickly.
  const output = new PassThrough({ highWaterMark: 256 });
  const audit = new MemoryAudit();
  const handled: number[] = [];
  const replies: Reply[] = [];
  const decoder = new FrameDecoder();
  let closed = false;
  const read = (): void => {
    for (let chunk = output.read() as Buffer | null; chunk !== null; chunk = output.read() as Buffer | null) {
      for (const body of decoder.push(chunk)) replies.push(JSON.parse(JSON.stringify(decodeMessage(body))) as Reply);
    }
  };
  if (options.unread !== true) output.on('readable', read);
  new Connection({
    input, output,
    close: () => input.destroy(),
    identify: async () => CALLER,
    service: {
      handle: async (request, _caller, session) => {
        handled.push(request.id);
        return handle(request, session);
      },
      discard: async () => {},
      endSession: async () => {},
    },
    audit,
    log: () => undefined,
    newSessionId: () => 'fedcba9876543210',
    onClosed: () => { closed = true; },
    ...options,
  });
  return {
    input, output, audit, handled,
    closed: () => closed,
    send: (request) => input.write(encodeFrame(encodeBody(request))),
    replies: () => {
      if (options.unread === true) read();
      return replies;
    },
  };
}

/** Waits (a turn of the event loop at a time, at most 5 s) until `check` holds. */
async function until(what: string, check: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const makeNics = (id: number): object => ({ v: 1, id, op: 'make-nics', bridges: ['br0'] });
const ok = async (request: Request): Promise<Reply> => ({ v: 1, id: request.id, ok: true, nics: [] });
const denied = async (request: Request): Promise<Reply> => ({ v: 1, id: request.id, ok: false, error: { code: 'DENIED', message: 'no line allows mallory on br0' } });

test('a connection that holds no taps and sends nothing is closed after the idle time, without a reply, and audited', async () => {
  const r = rig(ok, { idleMs: 30 });
  await until('the idle connection to be closed', r.closed);
  assert.equal(r.replies(), []);
  const record = r.audit.records.find((x) => x.event === 'connection');
  assert.equal({ ...record, message: undefined }, { event: 'connection', result: 'closed', reason: 'idle', message: undefined, uid: undefined, pid: undefined });
  assert.match(String(record?.['message']), /no request for 0\.03 s and no taps held/);
});

test('a connection whose requests were served and that then idles is closed too; requests restart the clock', async () => {
  const r = rig(ok, { idleMs: 40 });
  for (let id = 1; id <= 5; id += 1) {
    r.send(makeNics(id));
    await until(`reply ${id}`, () => r.replies().length === id);
    assert.not.ok(r.closed());
  }
  await until('the idle connection to be closed', r.closed);
  assert.is(r.audit.records.find((x) => x.event === 'connection')?.['uid'], CALLER.uid);
});

test('a connection whose session holds taps is never closed for idleness', async () => {
  const r = rig(async (request, session) => {
    session.nics.push({ bridge: 'br0', tap: 'xkvmidle0001', type: 'brctl' });
    return { v: 1, id: request.id, ok: true, nics: [{ bridge: 'br0', tap: 'xkvmidle0001', type: 'brctl' }] };
  }, { idleMs: 10 });
  r.send(makeNics(1));
  await until('the reply', () => r.replies().length === 1);
  // many idle times (a fixed wait: what is checked is that nothing happens)
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.not.ok(r.closed(), 'closed while holding a session tap');
  r.input.end();
  await until('the end', r.closed);
});

test('without an idle time (stdio) an idle connection stays open', async () => {
  const r = rig(ok);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.not.ok(r.closed());
  r.input.end();
  await until('the end', r.closed);
});

test('after 8 refused requests in a row the connection is closed once the 8th reply is out; a success restarts the count', async () => {
  let n = 0;
  const r = rig(async (request) => {
    n += 1;
    // seven refusals, one success, then refusals until closed
    return n === 8 ? ok(request) : denied(request);
  });
  for (let id = 1; id <= 20 && !r.closed(); id += 1) {
    r.send(makeNics(id));
    await until(`reply ${id} or the close`, () => r.replies().length === id || r.closed());
  }
  assert.ok(r.closed());
  // 7 refused, 1 ok, then 8 refused: 16 replies, the last a refusal
  assert.is(r.replies().length, 16);
  assert.is(r.replies()[7]?.ok, true);
  assert.ok(r.replies().slice(8).every((x) => !x.ok));
  const record = r.audit.records.find((x) => x.event === 'connection');
  assert.is(record?.['reason'], 'refusals');
  assert.is(record?.['code'], 'DENIED');
  assert.is(record?.['uid'], CALLER.uid);
  assert.match(String(record?.['message']), /8 refused requests in a row/);
});

test('an INTERNAL error is the helper\'s and does not count as a refusal; maxRefusals 0 never closes', async () => {
  const internal = rig(async (request) => ({ v: 1, id: request.id, ok: false, error: { code: 'INTERNAL', message: 'the helper failed; its log has the details' } }));
  const never = rig(denied, { maxRefusals: 0 });
  for (let id = 1; id <= 12; id += 1) {
    internal.send(makeNics(id));
    never.send(makeNics(id));
    await until(`reply ${id}`, () => internal.replies().length === id && never.replies().length === id);
  }
  assert.not.ok(internal.closed());
  assert.not.ok(never.closed());
  internal.input.end();
  never.input.end();
});

test('while more reply bytes than the bound wait for the client, nothing more is read or served; reading resumes it', async () => {
  const long = async (request: Request): Promise<Reply> => ({ v: 1, id: request.id, ok: true, nics: [{ bridge: 'br0', tap: `xkvm${'x'.repeat(8)}`, type: 'brctl' }] });
  const r = rig(long, { unread: true, maxUnsentBytes: 1024 });
  // one at a time, as a polite client would send them, but never reading
  let sent = 0;
  while (!r.input.isPaused() && sent < 200) {
    sent += 1;
    r.send(makeNics(sent));
    await until(`request ${sent} to be served or the reading to stop`, () => r.handled.length === sent || r.input.isPaused());
  }
  assert.ok(r.input.isPaused(), `still reading after ${sent} requests`);
  const served = r.handled.length;
  assert.ok(r.output.writableLength > 1024 && r.output.writableLength < 1024 + 512, `${r.output.writableLength} bytes unsent`);
  // more requests: not served while the client reads nothing
  for (let k = 1; k <= 5; k += 1) r.send(makeNics(sent + k));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.is(r.handled.length, served, 'served while stalled');
  assert.not.ok(r.closed());
  // the client reads: everything is answered
  await until('every request to be answered', () => r.replies().length === sent + 5);
  assert.is(r.handled.length, sent + 5);
  assert.not.ok(r.input.isPaused());
  r.input.end();
  await until('the end', r.closed);
});

test('a stalled connection that holds no taps is closed after the idle time', async () => {
  const r = rig(ok, { unread: true, maxUnsentBytes: 300, idleMs: 30 });
  for (let id = 1; id <= 200 && !r.input.isPaused(); id += 1) {
    r.send(makeNics(id));
    await until(`request ${id}`, () => r.handled.length === id || r.input.isPaused());
  }
  assert.ok(r.input.isPaused());
  await until('the stalled connection to be closed', r.closed);
  assert.match(String(r.audit.records.find((x) => x.event === 'connection')?.['message']), /read none of its replies/);
});

test('a session holding taps that stops reading is kept, and a frame it had half sent is not timed out while nothing is read', async () => {
  const r = rig(async (request, session) => {
    const nic = { bridge: 'br0', tap: `xkvm${String(request.id).padStart(8, '0')}`, type: 'brctl' as const };
    session.nics.push(nic);
    return { v: 1, id: request.id, ok: true, nics: [nic] };
  }, { unread: true, maxUnsentBytes: 300, idleMs: 10, deadlineMs: 20 });
  // each write: the rest of one frame and the start of the next, so that a frame is half
  // received when a reply stops the reading
  const frameOf = (id: number): Buffer => encodeFrame(encodeBody(makeNics(id)));
  let sent = 0;
  let tail = frameOf(1);
  while (!r.input.isPaused() && sent < 200) {
    sent += 1;
    const next = frameOf(sent + 1);
    r.input.write(Buffer.concat([tail, next.subarray(0, 5)]));
    tail = next.subarray(5);
    await until(`request ${sent}`, () => r.handled.length === sent || r.input.isPaused());
  }
  assert.ok(r.input.isPaused());
  // many idle times and frame deadlines (a fixed wait: what is checked is that nothing happens)
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.not.ok(r.closed(), 'a session holding taps was closed');
  r.input.write(tail);
  await until('every request to be answered once the client reads', () => r.replies().length === sent + 1);
  assert.not.ok(r.closed());
  r.input.end();
  await until('the end', r.closed);
});

test('a half-closed connection whose client reads none of its replies is closed after the idle time too', async () => {
  const long = async (request: Request): Promise<Reply> => ({ v: 1, id: request.id, ok: true, nics: [{ bridge: 'br0', tap: `xkvm${'y'.repeat(8)}`, type: 'brctl' }] });
  const r = rig(long, { unread: true, maxUnsentBytes: 300, idleMs: 30 });
  // sixteen requests at once (as many as may wait), then the client's end of the connection
  r.input.end(Buffer.concat(Array.from({ length: 16 }, (_, k) => encodeFrame(encodeBody(makeNics(k + 1))))));
  await until('the stalled, half-closed connection to be closed', r.closed);
  assert.ok(r.handled.length < 16, `all ${r.handled.length} served: the client was not made to wait`);
  assert.match(String(r.audit.records.find((x) => x.event === 'connection')?.['message']), /read none of its replies/);
});

test.run();
