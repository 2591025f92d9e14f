// One client connection (helper/src/transport/connection.ts) over in-memory streams, with the real
// service behind it and stand-ins at its edges: the network layer (taps on a pretend host), the
// quota lock, the caller's identity and the audit log. No socket, root or addon. Framing, the
// frame deadline, the queue limit, half-close, identification, and that a session ends (its taps
// removed) only after the request in flight; then the hostile-input tables of the real-helper
// suites (test/helper/server/cases.ts), each through a fresh connection.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { decodeBody } from '../../../shared/src/protocol/decode.js';
import { FrameDecoder } from '../../../shared/src/protocol/frame.js';
import { MAX_FRAME_BYTES } from '../../../shared/src/protocol/limits.js';
import type { ErrorReply, MakeNicsReply, Nic, Reply, Request } from '../../../shared/src/protocol/messages.js';
import { parseReply } from '../../../shared/src/protocol/validate.js';
import type { AuditRecord } from '../../../helper/src/audit/audit.js';
import { MemoryAudit } from '../requests/stand-ins.js';
import type { Caller } from '../../../helper/src/identity/caller.js';
import { PolicyHolder } from '../../../helper/src/policy/holder.js';
import { acceptAnyFile } from '../policy/support.js';
import { Ledger } from '../../../helper/src/records/ledger.js';
import { SessionStore } from '../../../helper/src/records/store.js';
import type { NetOps, TapOutcome, TapRequest } from '../../../helper/src/requests/net-ops.js';
import { Service, type ServiceDeps, type Session } from '../../../helper/src/requests/service.js';
import { Connection } from '../../../helper/src/transport/connection.js';
import { badFrames, badRequests } from '../server/cases.js';
import { assertSentence, mp, mpFrame } from '../server/support.js';
import { rawFrame } from '../server/wire.js';
import { MemoryLocks } from '../requests/stand-ins.js';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-connection-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const POLICY = join(dir, 'helper.conf');
writeFileSync(POLICY, 'allow br0 alice\nallow br1 alice\nmax-taps 64\n', { mode: 0o644 });

const alice: Caller = { uid: 4101, gid: 4101, pid: process.pid, start: 1n, transport: 'socket', user: { name: 'alice', uid: 4101, gid: 4101, groups: ['alice'] } };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait (a turn of the event loop at a time, at most 2 s) until `check` holds. */
async function until(what: string, check: () => boolean): Promise<void> {
  const end = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within 2 s`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Taps on a pretend host. While `hold()` is in force, making taps waits. */
class StandInNet implements NetOps {
  readonly host = new Map<string, number>();
  /** How many times createTaps was called. */
  calls = 0;
  #n = 0;
  #gate: Promise<void> | undefined;

  hold(): () => void {
    let release = (): void => undefined;
    this.#gate = new Promise<void>((resolve) => { release = resolve; });
    return () => {
      this.#gate = undefined;
      release();
    };
  }

  async createTaps(requests: TapRequest[], opts: Parameters<NetOps['createTaps']>[1]): Promise<TapOutcome[]> {
    this.calls += 1;
    if (this.#gate !== undefined) await this.#gate;
    return requests.map(({ bridges, owner }, job) => {
      const nics = bridges.map((bridge): Nic => {
        this.#n += 1;
        return { bridge, tap: `xkvmunit${this.#n}`, type: 'brctl' };
      });
      opts.beforeCreate?.(nics.map((n, slot) => ({ job, slot, bridge: n.bridge, kind: 'linux', tap: n.tap })));
      for (const n of nics) this.host.set(n.tap, owner.uid);
      return { nics, ifindexes: nics.map((n) => this.ifindex(n.tap)) };
    });
  }

  /** Taps are numbered: xkvmunitN has ifindex 100 + N. */
  ifindex(name: string): number | undefined {
    return this.host.has(name) ? 100 + Number(name.slice('xkvmunit'.length)) : undefined;
  }

  isTap(name: string): boolean {
    return this.host.has(name);
  }

  async deleteTaps(nics: Nic[]): Promise<void> {
    for (const nic of nics) this.host.delete(nic.tap);
  }

  async ovsCleanup(): Promise<{ removed: []; refused: [] }> {
    return { removed: [], refused: [] };
  }
}

/** The real service, telling in `events` when a request starts and is answered and when a session ends. */
class WatchedService extends Service {
  readonly events: string[];

  constructor(deps: ServiceDeps, events: string[]) {
    super(deps);
    this.events = events;
  }

  override async handle(request: Request, caller: Caller, session: Session): Promise<Reply> {
    this.events.push(`request ${request.id}`);
    const reply = await super.handle(request, caller, session);
    this.events.push(`answered ${request.id}`);
    return reply;
  }

  override async endSession(session: Session, caller: Caller | undefined, why: string): Promise<void> {
    this.events.push(`end session with ${session.nics.length} tap(s)`);
    await super.endSession(session, caller, why);
  }

  override async discard(nics: Nic[], caller: Caller, why: string): Promise<void> {
    this.events.push(`discard ${nics.length} tap(s)`);
    await super.discard(nics, caller, why);
  }
}

type Seen = { kind: 'reply'; reply: Reply } | { kind: 'malformed'; error: string } | { kind: 'end' } | { kind: 'timeout' };

/** What the helper writes back, read strictly (frames, decode, parseReply), in order. */
class Replies {
  readonly #queue: Seen[] = [];
  #wake: (() => void) | undefined;

  constructor(output: Readable) {
    const decoder = new FrameDecoder();
    output.on('data', (chunk: Buffer) => {
      try {
        for (const body of decoder.push(chunk)) this.#push({ kind: 'reply', reply: parseReply(decodeBody(body)) });
      } catch (error) {
        this.#push({ kind: 'malformed', error: (error as Error).message });
      }
    });
    output.on('end', () => this.#push({ kind: 'end' }));
  }

  #push(seen: Seen): void {
    this.#queue.push(seen);
    this.#wake?.();
  }

  /** The next thing written (a reply, or the end of the output), or timeout after `ms`. */
  async next(ms = 1000): Promise<Seen> {
    const end = Date.now() + ms;
    while (this.#queue.length === 0) {
      const left = end - Date.now();
      if (left <= 0) return { kind: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return this.#queue.shift()!;
  }
}

interface Options {
  deadlineMs?: number;
  identify?: () => Promise<Caller>;
}

/** A connection on fresh in-memory streams, with its own stand-ins. */
function open(options: Options = {}) {
  const net = new StandInNet();
  const audit = new MemoryAudit();
  const events: string[] = [];
  const store = new SessionStore(mkdtempSync(join(dir, 'state-')));
  const service = new WatchedService({
    policy: new PolicyHolder(POLICY, { checkFile: acceptAnyFile }), net, audit, store, ledger: new Ledger(store.dir, { lock: new MemoryLocks().lock }),
    helper: { pid: process.pid, start: '1' }, log: (message) => events.push(`log ${message}`),
  }, events);
  const input = new PassThrough();
  const output = new PassThrough();
  const replies = new Replies(output);
  const counts = { identified: 0, closed: 0 };
  let ended = (): void => undefined;
  const end = new Promise<void>((resolve) => { ended = resolve; });
  new Connection({
    input,
    output,
    close: () => {
      counts.closed += 1;
      input.destroy();
    },
    identify: async () => {
      counts.identified += 1;
      return options.identify === undefined ? alice : await options.identify();
    },
    service,
    audit,
    log: (message) => events.push(`log ${message}`),
    newSessionId: () => store.newId(),
    ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
    onEnd: () => {
      events.push('ended');
      ended();
    },
  });
  return { input, replies, net, audit, events, store, counts, end };
}

function makeNics(id: number, lifetime: 'session' | 'persistent' = 'session'): Buffer {
  return mpFrame({ v: 1, id, op: 'make-nics', bridges: ['br0'], lifetime });
}

function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length);
  return h;
}

function assertNics(seen: Seen, id: number): MakeNicsReply {
  if (seen.kind !== 'reply' || !seen.reply.ok || !('nics' in seen.reply)) {
    throw new Error(`expected make-nics ${id} to succeed, got ${JSON.stringify(seen)}`);
  }
  assert.is(seen.reply.id, id);
  assert.is(seen.reply.nics.length, 1);
  return seen.reply;
}

function assertError(seen: Seen, codes: string | readonly string[], id: number, mentions?: RegExp): ErrorReply {
  const allowed = typeof codes === 'string' ? [codes] : codes;
  if (seen.kind !== 'reply' || seen.reply.ok) throw new Error(`expected an error reply ${allowed.join('|')}, got ${JSON.stringify(seen)}`);
  assert.ok(allowed.includes(seen.reply.error.code), `code ${seen.reply.error.code} (${seen.reply.error.message}), expected ${allowed.join(' or ')}`);
  assert.is(seen.reply.id, id, 'the reply\'s id');
  if (mentions !== undefined) assert.match(seen.reply.error.message, mentions);
  assertSentence(seen.reply.error.message, allowed.join('|'));
  return seen.reply;
}

/** The connection was closed by the helper: the replies' side ended and the transport was closed once. */
async function assertClosed(c: ReturnType<typeof open>): Promise<void> {
  assert.equal(await c.replies.next(), { kind: 'end' }, 'the replies\' side must end after a fatal error');
  await c.end;
  await until('the transport is closed', () => c.counts.closed > 0);
  assert.is(c.counts.closed, 1);
}

/** Send `frames` with the network layer held, once the first request is making its taps; returns the release. */
async function inFlight(c: ReturnType<typeof open>, frames: Buffer): Promise<() => void> {
  const release = c.net.hold();
  c.input.write(frames);
  await until('the first request is making its taps', () => c.net.calls === 1);
  return release;
}

/** The audit records about a closed connection. */
const closings = (audit: MemoryAudit): AuditRecord[] => audit.records.filter((r) => r.event === 'connection');

// --- framing -----------------------------------------------------------------------------------

test('a request arriving a byte at a time is answered once, as one request', async () => {
  const c = open();
  for (const byte of makeNics(1)) {
    c.input.write(Buffer.from([byte]));
    await new Promise((resolve) => setImmediate(resolve));
  }
  assertNics(await c.replies.next(), 1);
  assert.equal(await c.replies.next(50), { kind: 'timeout' });
  assert.is(c.net.calls, 1);
});

test('several requests in one chunk are each answered, in the order sent', async () => {
  const c = open();
  c.input.write(Buffer.concat([makeNics(1), makeNics(2), makeNics(3)]));
  for (const id of [1, 2, 3]) assertNics(await c.replies.next(), id);
  assert.is(c.net.host.size, 3);
});

test('a chunk ending inside a frame is answered for its whole frames, and the rest when it completes', async () => {
  const c = open();
  const second = makeNics(2);
  c.input.write(Buffer.concat([makeNics(1), second.subarray(0, 7)]));
  assertNics(await c.replies.next(), 1);
  assert.equal(await c.replies.next(50), { kind: 'timeout' });
  c.input.write(second.subarray(7));
  assertNics(await c.replies.next(), 2);
});

for (const [what, length, mentions] of [['0', 0, /length 0 /], ['65537', MAX_FRAME_BYTES + 1, /65537/], ['0xFFFFFFFF', 0xffff_ffff, /4294967295/]] as const) {
  test(`a frame length of ${what} gets BAD_FRAME without the body being awaited, and the connection is closed`, async () => {
    const c = open();
    c.input.write(header(length));
    assertError(await c.replies.next(), 'BAD_FRAME', 0, mentions);
    await assertClosed(c);
    assert.is(c.counts.identified, 0);
    assert.is(closings(c.audit).length, 1);
    assert.is(closings(c.audit)[0]?.['code'], 'BAD_FRAME');
  });
}

// --- the frame deadline ------------------------------------------------------------------------

test('a frame started but not completed within the deadline gets BAD_FRAME, and the connection is closed', async () => {
  const c = open({ deadlineMs: 100 });
  const started = Date.now();
  c.input.write(makeNics(1).subarray(0, 6));
  assertError(await c.replies.next(2000), 'BAD_FRAME', 0, /not completed within 0\.1 s/);
  const waited = Date.now() - started;
  assert.ok(waited >= 95, `the reply came after ${waited} ms, before the deadline`);
  await assertClosed(c);
  assert.is(c.net.calls, 0);
});

test('a header alone, without its body, is held to the deadline too', async () => {
  const c = open({ deadlineMs: 50 });
  c.input.write(header(10));
  assertError(await c.replies.next(2000), 'BAD_FRAME', 0, /not completed/);
  await assertClosed(c);
});

test('a connection quiet between frames is not timed out', async () => {
  const c = open({ deadlineMs: 50 });
  c.input.write(makeNics(1));
  assertNics(await c.replies.next(), 1);
  assert.equal(await c.replies.next(200), { kind: 'timeout' });
  c.input.write(makeNics(2));
  assertNics(await c.replies.next(), 2);
});

test('a completed frame restarts the deadline: frames each completed in time are served though together they take longer', async () => {
  const c = open({ deadlineMs: 400 });
  const [a, b] = [makeNics(1), makeNics(2)];
  c.input.write(a.subarray(0, 5));
  await sleep(250);
  c.input.write(Buffer.concat([a.subarray(5), b.subarray(0, 5)]));
  assertNics(await c.replies.next(), 1);
  await sleep(250);
  c.input.write(b.subarray(5));
  assertNics(await c.replies.next(), 2);
  assert.equal(await c.replies.next(50), { kind: 'timeout' });
});

// --- the queue limit ---------------------------------------------------------------------------

test('sixteen requests sent without waiting for replies are all answered, in order', async () => {
  const c = open();
  c.input.write(Buffer.concat(Array.from({ length: 16 }, (_, i) => makeNics(i + 1))));
  for (let id = 1; id <= 16; id += 1) assertNics(await c.replies.next(), id);
});

test('seventeen requests in one chunk get BAD_FRAME and a close, and none is served', async () => {
  const c = open();
  c.input.write(Buffer.concat(Array.from({ length: 17 }, (_, i) => makeNics(i + 1))));
  assertError(await c.replies.next(), 'BAD_FRAME', 0, /more than 16 requests queued/);
  await assertClosed(c);
  assert.is(c.net.calls, 0);
});

test('behind a request in flight, 16 more may queue; one more closes the connection, and the first request\'s taps are still removed', async () => {
  const c = open();
  const release = await inFlight(c, makeNics(1));
  for (let id = 2; id <= 17; id += 1) c.input.write(makeNics(id));
  assert.equal(await c.replies.next(50), { kind: 'timeout' });
  c.input.write(makeNics(18));
  assertError(await c.replies.next(), 'BAD_FRAME', 0, /queued/);
  release();
  await assertClosed(c);
  assert.equal(c.events.filter((e) => !e.startsWith('log')), ['request 1', 'answered 1', 'end session with 1 tap(s)', 'ended']);
  assert.is(c.net.host.size, 0);
  assert.equal(c.store.list(), []);
});

// --- half-close --------------------------------------------------------------------------------

test('after the client ends its side, requests already received are answered, then the replies\' side ends and the session\'s taps go', async () => {
  const c = open();
  const release = await inFlight(c, Buffer.concat([makeNics(1), makeNics(2)]));
  c.input.end();
  await sleep(20);
  release();
  assertNics(await c.replies.next(), 1);
  assertNics(await c.replies.next(), 2);
  assert.equal(await c.replies.next(), { kind: 'end' });
  await c.end;
  assert.is(c.net.host.size, 0);
  assert.equal(c.store.list(), []);
  assert.is(c.counts.closed, 0, 'a half-closed connection ends by ending its output, not by being closed');
});

test('a client that ends its side in the middle of a frame gets BAD_FRAME, and nothing is served', async () => {
  const c = open();
  c.input.write(Buffer.concat([header(30), Buffer.alloc(5)]));
  c.input.end();
  assertError(await c.replies.next(), 'BAD_FRAME', 0, /middle of a frame/);
  await assertClosed(c);
  assert.is(c.counts.identified, 0);
});

// --- identification ----------------------------------------------------------------------------

test('a caller who cannot be identified gets NO_IDENTITY saying why, and the connection is closed', async () => {
  const c = open({ identify: async () => { throw new Error('no user has uid 4242'); } });
  c.input.write(makeNics(1));
  assertError(await c.replies.next(), 'NO_IDENTITY', 0, /no user has uid 4242/);
  await assertClosed(c);
  assert.is(c.net.calls, 0);
  assert.equal(c.events, ['end session with 0 tap(s)', 'ended']);
  assert.equal(c.audit.records.map((r) => [r.event, r['result'], r['code']]), [['identify', 'error', undefined], ['connection', 'closed', 'NO_IDENTITY']]);
});

test('the caller is identified once, at the first request, for every request of the connection', async () => {
  const c = open();
  c.input.write(makeNics(1));
  assertNics(await c.replies.next(), 1);
  c.input.write(Buffer.concat([makeNics(2), makeNics(3)]));
  assertNics(await c.replies.next(), 2);
  assertNics(await c.replies.next(), 3);
  assert.is(c.counts.identified, 1);
});

// --- the end of a session ----------------------------------------------------------------------

test('a connection that drops while a request is in flight ends its session only after that request, and its taps go', async () => {
  const c = open();
  const release = await inFlight(c, makeNics(1));
  c.input.destroy();
  await sleep(20);
  assert.equal(c.events, ['request 1'], 'the session ended while its request was still in flight');
  release();
  await c.end;
  assert.equal(c.events.filter((e) => !e.startsWith('log')), ['request 1', 'answered 1', 'end session with 1 tap(s)', 'ended']);
  assert.is(c.net.host.size, 0);
  assert.equal(c.store.list(), []);
  assert.ok(c.audit.records.some((r) => r.event === 'session-end' && r['result'] === 'ok'));
});

test('persistent taps made after their client left are removed, since nobody will learn their names', async () => {
  const c = open();
  const release = await inFlight(c, makeNics(1, 'persistent'));
  c.input.destroy();
  await sleep(20);
  release();
  await c.end;
  assert.ok(c.events.includes('discard 1 tap(s)'), c.events.join(', '));
  assert.is(c.net.host.size, 0);
  assert.ok(c.audit.records.some((r) => r.event === 'undelivered'));
});

test('persistent taps whose reply was delivered outlive the connection', async () => {
  const c = open();
  c.input.write(makeNics(1, 'persistent'));
  const reply = assertNics(await c.replies.next(), 1);
  c.input.end();
  assert.equal(await c.replies.next(), { kind: 'end' });
  await c.end;
  assert.equal([...c.net.host.keys()], reply.nics.map((n) => n.tap));
});

// --- the hostile-input tables of the real-helper suites ----------------------------------------

for (const [what, body, mentions] of badFrames) {
  test(`${what}: BAD_FRAME (id 0), the connection closed, nobody identified, one audit record`, async () => {
    const c = open();
    c.input.write(rawFrame(body));
    assertError(await c.replies.next(), 'BAD_FRAME', 0, mentions);
    await assertClosed(c);
    assert.is(c.counts.identified, 0);
    assert.is(c.net.calls, 0);
    assert.equal(c.audit.records.map((r) => [r.event, r['code']]), [['connection', 'BAD_FRAME']]);
  });
}

for (const r of badRequests) {
  test(`${r.what}: an error reply, one audit record, and the connection still serves`, async () => {
    const c = open();
    c.input.write(Buffer.concat([rawFrame(mp(r.build(7))), makeNics(8)]));
    const reply = assertError(await c.replies.next(), r.code, r.idReadable ? 7 : 0, r.mentions);
    assertNics(await c.replies.next(), 8);
    assert.equal(c.audit.records.filter((a) => a['result'] !== 'ok').map((a) => [a.event, a['result'], a['code']]),
      [['request', 'rejected', reply.error.code]]);
    assert.is(c.net.calls, 1);
    c.input.end();
    assert.equal(await c.replies.next(), { kind: 'end' });
    await c.end;
    assert.is(c.net.host.size, 0);
  });
}

test.run();
