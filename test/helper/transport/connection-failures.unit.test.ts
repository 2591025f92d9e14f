// Connection over in-memory streams with a stand-in service: a request whose serving throws (a
// bug) is logged, answered INTERNAL, and the connection goes on; a failure while ending the
// session is logged, never an unhandled rejection.
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeBody } from '../../../shared/src/protocol/decode.js';
import { encodeFrame, FrameDecoder } from '../../../shared/src/protocol/frame.js';
import type { Reply, Request } from '../../../shared/src/protocol/messages.js';
import { MemoryAudit } from '../requests/stand-ins.js';
import type { Caller } from '../../../helper/src/identity/caller.js';
import type { Session } from '../../../helper/src/requests/service.js';
import { INTERNAL_MESSAGE } from '../../../helper/src/requests/wire-error.js';
import { Connection, type ConnectionOptions } from '../../../helper/src/transport/connection.js';

const CALLER: Caller = {
  uid: 4001, gid: 4001, pid: process.pid, start: 1n, transport: 'socket',
  user: { name: 'alice', uid: 4001, gid: 4001, groups: ['alice'] },
};

type Handle = (request: Request) => Promise<Reply>;

interface Rig {
  input: PassThrough;
  replies: Reply[];
  logged: string[];
  ended: Promise<void>;
  send: (request: object) => void;
  /** Resolves when `n` replies have arrived. */
  replied: (n: number) => Promise<Reply[]>;
}

function rig(handle: Handle, service: Partial<ConnectionOptions['service']> = {}): Rig {
  const input = new PassThrough();
  const output = new PassThrough();
  const replies: Reply[] = [];
  const logged: string[] = [];
  const decoder = new FrameDecoder();
  const waiters: Array<() => void> = [];
  output.on('data', (chunk: Buffer) => {
    // decodeMessage gives null-prototype objects: made plain to compare.
    for (const body of decoder.push(chunk)) replies.push(JSON.parse(JSON.stringify(decodeMessage(body))) as Reply);
    for (const w of waiters.splice(0)) w();
  });
  let onEnd = (): void => {};
  const ended = new Promise<void>((resolve) => { onEnd = resolve; });
  new Connection({
    input, output,
    close: () => input.destroy(),
    identify: async () => CALLER,
    service: {
      handle: (request) => handle(request),
      discard: async () => {},
      endSession: async () => {},
      ...service,
    },
    audit: new MemoryAudit(),
    log: (message) => logged.push(message),
    newSessionId: () => '0123456789abcdef',
    onEnd,
  });
  const replied = async (n: number): Promise<Reply[]> => {
    while (replies.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    return replies;
  };
  return { input, replies, logged, ended, send: (request) => input.write(encodeFrame(encodeBody(request))), replied };
}

const makeNics = (id: number): object => ({ v: 1, id, op: 'make-nics', bridges: ['br0'] });
const ok = (request: Request): Reply => ({ v: 1, id: request.id, ok: true, nics: [] });

test('a request whose service throws gets INTERNAL with its id, the details go to the log, the next request is served', async () => {
  let calls = 0;
  const r = rig(async (request) => {
    calls += 1;
    if (calls === 1) throw new Error('stand-in bug\n\u001b[2Jforged line');
    return ok(request);
  });
  r.send(makeNics(7));
  r.send(makeNics(8));
  const [first, second] = await r.replied(2);
  assert.equal(first, { v: 1, id: 7, ok: false, error: { code: 'INTERNAL', message: INTERNAL_MESSAGE } });
  assert.equal(second, { v: 1, id: 8, ok: true, nics: [] });
  assert.is(r.logged.length, 1);
  assert.match(r.logged[0] ?? '', /^internal error serving request 7: Error: stand-in bug\\n\\e\[2Jforged line\\n {4}at /);
  assert.not.match(r.logged[0] ?? '', /[\n\u001b]/);
  assert.not.match(JSON.stringify(first), /stand-in bug/);
  r.input.end();
  await r.ended;
});

test('something thrown that is not an Error is logged too, and the connection stays usable', async () => {
  let calls = 0;
  const r = rig(async (request) => {
    calls += 1;
    if (calls === 1) throw 'a string'; // eslint-disable-line @typescript-eslint/only-throw-error
    return ok(request);
  });
  r.send(makeNics(1));
  await r.replied(1);
  r.send(makeNics(2));
  const [first, second] = await r.replied(2);
  assert.is(first?.ok, false);
  assert.is(second?.ok, true);
  assert.match(r.logged[0] ?? '', /internal error serving request 1: a string/);
  r.input.end();
  await r.ended;
});

test('a request that throws after the client is gone is logged and nothing is written', async () => {
  let fail: (error: Error) => void = () => {};
  const r = rig(() => new Promise<Reply>((_resolve, reject) => { fail = reject; }));
  r.send(makeNics(3));
  await new Promise((resolve) => setTimeout(resolve, 20));
  r.input.destroy();
  await once(r.input, 'close');
  fail(new Error('too late'));
  await r.ended;
  assert.equal(r.replies, []);
  assert.match(r.logged.join('\n'), /internal error serving request 3: Error: too late/);
});

test('a failure while ending the session is logged, onEnd still runs, and no rejection is left unhandled', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };
  process.on('unhandledRejection', onUnhandled);
  try {
    const r = rig(async (request) => ok(request), {
      endSession: async (session: Session) => { throw new Error(`cannot end ${session.id}`); },
    });
    r.send(makeNics(4));
    await r.replied(1);
    r.input.end();
    await r.ended;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.match(r.logged.join('\n'), /internal error ending session 0123456789abcdef: Error: cannot end 0123456789abcdef/);
    assert.equal(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test.run();
