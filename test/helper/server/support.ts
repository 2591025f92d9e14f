// Shared by the hostile-input suites against the real helper (test/helper/server/*.test.ts):
// a namespace with bridges and a helper serving a socket (`openBench`), a hand-rolled msgpack
// encoder that can write anything (forbidden keys, invalid UTF-8, extension types, lying counts),
// checks that a reply is a clear sentence, and `hostile()`, which sends bytes and checks the
// three things every case must show: the reply, that nothing else happened (no new device, no
// session record, exactly one audit record), and that the helper keeps serving (a make-nics
// from another connection, and for non-fatal errors from the same one, still succeeds).
//
// A case counts only its own audit records (`ownRecords`: by the caller's pid, the request ids
// and the taps of its sessions): a session of an earlier case may end while this one runs.
// Nothing here times the helper; waits are for conditions, with deadlines only against hanging.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ErrorReply, Nic } from '../../../shared/src/protocol/messages.js';
import { createNetns, createTestUser, removeTestUser, type Netns, type TestUser } from '../../support/netns.js';
import { startOvs, type Ovs } from '../../support/ovs.js';
import { startHelper, type AuditEntry, type HelperOptions, type HelperProcess } from '../../support/helper-process.js';
import { watch, type Watched } from '../../support/helper-proc.js';
import { PATIENCE_MS, waitFor } from '../../support/wait.js';

export { PATIENCE_MS };
import type { AgentCommand } from './agent.js';
import { WireConnection, type Next } from './wire.js';

const AGENT = fileURLToPath(new URL('./agent.js', import.meta.url));

export function requireRoot(): void {
  if (process.geteuid?.() !== 0) throw new Error('these suites need root: they run the real helper in a network namespace');
}

// --- msgpack, by hand ------------------------------------------------------------------------

/** Bytes put into the output as they are. */
export class Raw {
  constructor(readonly bytes: Uint8Array) {}
}

/** A map given as key/value pairs (any keys, any order, duplicates allowed, `__proto__` as a plain key). */
export class MapOf {
  constructor(readonly entries: ReadonlyArray<readonly [MpValue, MpValue]>) {}
}

export type MpValue = null | boolean | number | bigint | string | Raw | MapOf | readonly MpValue[] | { readonly [key: string]: MpValue };

function head(small: number, fix: number, tags: readonly [number, number, number], n: number): Buffer {
  if (n < small) return Buffer.from([fix | n]);
  if (n <= 0xff && tags[0] !== 0) return Buffer.from([tags[0], n]);
  if (n <= 0xffff) {
    const b = Buffer.alloc(3);
    b[0] = tags[1];
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = tags[2];
  b.writeUInt32BE(n, 1);
  return b;
}

function int(n: bigint): Buffer {
  if (n >= 0n) {
    if (n < 128n) return Buffer.from([Number(n)]);
    if (n <= 0xffn) return Buffer.from([0xcc, Number(n)]);
    if (n <= 0xffffn) { const b = Buffer.alloc(3); b[0] = 0xcd; b.writeUInt16BE(Number(n), 1); return b; }
    if (n <= 0xffff_ffffn) { const b = Buffer.alloc(5); b[0] = 0xce; b.writeUInt32BE(Number(n), 1); return b; }
    const b = Buffer.alloc(9); b[0] = 0xcf; b.writeBigUInt64BE(n, 1); return b;
  }
  if (n >= -32n) return Buffer.from([Number(n) & 0xff]);
  if (n >= -128n) { const b = Buffer.alloc(2); b[0] = 0xd0; b.writeInt8(Number(n), 1); return b; }
  if (n >= -32768n) { const b = Buffer.alloc(3); b[0] = 0xd1; b.writeInt16BE(Number(n), 1); return b; }
  if (n >= -2147483648n) { const b = Buffer.alloc(5); b[0] = 0xd2; b.writeInt32BE(Number(n), 1); return b; }
  const b = Buffer.alloc(9); b[0] = 0xd3; b.writeBigInt64BE(n, 1); return b;
}

/** msgpack for `value`, exactly as written (no checks: it is for making bad input). */
export function mp(value: MpValue): Buffer {
  if (value === null) return Buffer.from([0xc0]);
  if (value === false) return Buffer.from([0xc2]);
  if (value === true) return Buffer.from([0xc3]);
  if (value instanceof Raw) return Buffer.from(value.bytes);
  if (typeof value === 'bigint') return int(value);
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return int(BigInt(value));
    const b = Buffer.alloc(9);
    b[0] = 0xcb;
    b.writeDoubleBE(value, 1);
    return b;
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(32, 0xa0, [0xd9, 0xda, 0xdb], bytes.length), bytes]);
  }
  if (value instanceof MapOf) {
    return Buffer.concat([head(16, 0x80, [0, 0xde, 0xdf], value.entries.length), ...value.entries.flatMap(([k, v]) => [mp(k), mp(v)])]);
  }
  if (Array.isArray(value)) {
    const items = value as readonly MpValue[];
    return Buffer.concat([head(16, 0x90, [0, 0xdc, 0xdd], items.length), ...items.map(mp)]);
  }
  const entries = Object.entries(value as { readonly [key: string]: MpValue });
  return Buffer.concat([head(16, 0x80, [0, 0xde, 0xdf], entries.length), ...entries.flatMap(([k, v]) => [mp(k), mp(v)])]);
}

/** A msgpack string header followed by `bytes` (which need not be UTF-8). */
export function rawStr(bytes: readonly number[]): Raw {
  return new Raw(Buffer.concat([head(32, 0xa0, [0xd9, 0xda, 0xdb], bytes.length), Buffer.from(bytes)]));
}

/** A frame (length + body) holding the msgpack of `value`. */
export function mpFrame(value: MpValue): Buffer {
  const body = mp(value);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

// --- what the helper says --------------------------------------------------------------------

/** Fail the test with `message` (uvu's unreachable, typed as not returning). */
export function fail(message: string): never {
  assert.unreachable(message);
  throw new Error(message);
}

/** A message for a person: a short sentence of words, no control characters, no programming artefacts. */
export function assertSentence(message: unknown, context: string): void {
  assert.type(message, 'string', `${context}: the message is not a string`);
  const m = message as string;
  assert.ok(m.length >= 12 && m.length <= 400, `${context}: a message of ${m.length} characters: ${JSON.stringify(m.slice(0, 200))}`);
  assert.ok(/[a-z]{3,} [a-z"(]/i.test(m), `${context}: not words: ${JSON.stringify(m)}`);
  // eslint-disable-next-line no-control-regex
  assert.not.ok(/[\u0000-\u001f\u007f-\u009f]/.test(m), `${context}: control characters in ${JSON.stringify(m)}`);
  assert.not.ok(/\bundefined\b|\[object |\bNaN\b|^\w*Error:|\n\s+at |TypeError|RangeError/.test(m), `${context}: a programming artefact in ${JSON.stringify(m)}`);
}

/** The error reply `next` must be, with the code one of `codes` and the id `id`. */
export function assertError(next: Next, codes: string | readonly string[], id: number, context: string): ErrorReply {
  const allowed = typeof codes === 'string' ? [codes] : codes;
  if (next.kind !== 'reply') fail(`${context}: expected an error reply ${allowed.join('|')}, got ${JSON.stringify(next)}`);
  const reply = next.reply;
  if (reply.ok) fail(`${context}: expected an error reply ${allowed.join('|')}, got success ${JSON.stringify(reply)}`);
  assert.ok(allowed.includes(reply.error.code), `${context}: code ${reply.error.code} (${reply.error.message}), expected ${allowed.join(' or ')}`);
  assert.is(reply.id, id, `${context}: the reply's id`);
  assertSentence(reply.error.message, context);
  return reply;
}

// --- the bench: a namespace and a helper -----------------------------------------------------

export interface Bench {
  readonly ns: Netns;
  readonly helper: HelperProcess;
  /** The devices in the namespace when the bench opened (every case must leave exactly these). */
  readonly baseline: readonly string[];
  /** A fresh request id (distinct across a suite). */
  id(): number;
}

const ROOT_POLICY = 'allow br0 root\nallow br1 root\n';

export async function openBench(opts: {
  bridges?: readonly string[]; policy?: HelperOptions['policy']; env?: Record<string, string>; args?: readonly string[];
} = {}): Promise<Bench> {
  requireRoot();
  const ns = createNetns({ bridges: opts.bridges ?? ['br0', 'br1'] });
  try {
    const helper = await startHelper(ns, {
      policy: opts.policy ?? ROOT_POLICY, ...(opts.env === undefined ? {} : { env: opts.env }), ...(opts.args === undefined ? {} : { args: opts.args }),
    });
    let next = 1000;
    return { ns, helper, baseline: links(ns), id: () => (next += 1) };
  } catch (error) {
    ns.destroy();
    throw error;
  }
}

export async function closeBench(bench: Bench | undefined): Promise<void> {
  if (bench === undefined) return;
  try {
    const internal = bench.helper.otherLines().filter((l) => /internal error|Unhandled|uncaught/i.test(l));
    assert.equal(internal, [], 'the helper logged an internal error');
  } finally {
    await bench.helper.stop();
    bench.ns.destroy();
  }
}

/** A suite's bench: opened before its first test, closed after its last; the getter fails a test run without one. */
export function useBench(suite: Test, opts: Parameters<typeof openBench>[0] = {}): () => Bench {
  let bench: Bench | undefined;
  suite.before(async () => {
    bench = await openBench(opts);
  });
  suite.after(async () => {
    await closeBench(bench);
  });
  return () => {
    if (bench === undefined) throw new Error('no bench');
    return bench;
  };
}

/** Names of the network devices in the namespace, sorted. */
export function links(ns: Netns): string[] {
  const list = JSON.parse(ns.ip('-j', 'link', 'show')) as { ifname: string }[];
  return list.map((d) => d.ifname).sort();
}

/** The owner uid of tap `name` in the namespace. */
export function tapOwner(ns: Netns, name: string): number {
  const r = ns.exec(['/usr/bin/cat', `/sys/class/net/${name}/owner`]);
  if (r.status !== 0) throw new Error(`cannot read the owner of ${name}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

// --- whose audit records ----------------------------------------------------------------------

/** What a case's audit records are recognised by. */
export interface Own {
  /** The pids of its callers (a record names the caller's pid, or the peer's for a closed connection). */
  readonly pids: readonly number[];
  /** The ids of its requests (service records carry the request's id; records of unreadable requests do not). */
  readonly ids?: readonly number[];
  /** The taps of its sessions (session-end and other records of taps name no caller). */
  readonly taps?: readonly string[];
}

function tapNames(record: AuditEntry): string[] {
  const taps = record['taps'];
  return Array.isArray(taps) ? taps.map((t) => String((t as { tap?: unknown }).tap)) : [];
}

/**
 * The records `own` accounts for, in order: those naming one of its callers (and, when they name
 * a request id, one of its ids), and those of taps naming one of its taps.
 */
export function ownRecords(records: readonly AuditEntry[], own: Own): AuditEntry[] {
  return records.filter((r) => {
    const caller = r['caller'] as { pid?: unknown } | undefined;
    const pid = caller?.pid ?? r['pid'];
    if (pid === undefined) return tapNames(r).some((t) => own.taps?.includes(t) === true);
    const id = (r['request'] as { id?: unknown } | undefined)?.id;
    return own.pids.includes(pid as number) && (id === undefined || own.ids === undefined || own.ids.includes(id as number));
  });
}

/** Waits until at least `count` of the records after `mark` are `own`'s; returns those. */
export async function ownRecordsSince(helper: HelperProcess, mark: number, own: Own, count: number): Promise<AuditEntry[]> {
  const { value } = await waitFor(() => {
    const mine = ownRecords(helper.auditSince(mark), own);
    return mine.length >= count ? mine : undefined;
  }, PATIENCE_MS, { what: `${count} audit record(s) of this case`, describe: () => JSON.stringify(helper.auditSince(mark)) });
  return value;
}

export function makeNicsRequest(id: number, bridges: readonly string[] = ['br0'], lifetime: 'session' | 'persistent' = 'session'): object {
  return { v: 1, id, op: 'make-nics', bridges: [...bridges], lifetime };
}

/** A successful make-nics reply for `id`, with one tap per bridge that now exists in the namespace. */
export function assertNics(next: Next, id: number, bridges: readonly string[], ns: Netns, context: string): Nic[] {
  if (next.kind !== 'reply') fail(`${context}: expected make-nics to succeed, got ${JSON.stringify(next)}`);
  const reply = next.reply;
  if (!reply.ok || !('nics' in reply)) fail(`${context}: expected make-nics to succeed, got ${JSON.stringify(reply)}`);
  assert.is(reply.id, id, `${context}: the reply's id`);
  assert.equal(reply.nics.map((n) => n.bridge), [...bridges], `${context}: bridges of the nics`);
  const now = links(ns);
  for (const nic of reply.nics) assert.ok(now.includes(nic.tap), `${context}: ${nic.tap} does not exist`);
  return reply.nics;
}

/** What stillServes did: its requests (each leaves a request record and a session-end record). */
export interface Served {
  readonly requests: number;
  readonly ids: readonly number[];
  readonly taps: readonly string[];
}

/**
 * The helper still serves: make-nics on br0 from a fresh connection (and from `same`, when
 * given, at the same time) succeeds; then the connections are closed and their sessions end
 * (taps gone, session-end records written, session records removed).
 */
export async function stillServes(bench: Bench, context: string, same?: WireConnection): Promise<Served> {
  const { helper, ns } = bench;
  assert.ok(helper.alive(), `${context}: the helper is gone`);
  const other = await WireConnection.connect(helper.socket);
  const asks: Array<{ conn: WireConnection; id: number; label: string }> = [{ conn: other, id: bench.id(), label: 'another connection' }];
  if (same !== undefined) asks.push({ conn: same, id: bench.id(), label: 'the same connection' });
  const mark = helper.auditMark();
  const records = helper.stateFiles();
  const answers = await Promise.all(asks.map((a) => a.conn.ask(makeNicsRequest(a.id))));
  const taps: string[] = [];
  try {
    answers.forEach((next, i) => {
      const a = asks[i]!;
      taps.push(...assertNics(next, a.id, ['br0'], ns, `${context}: afterwards, make-nics from ${a.label}`).map((n) => n.tap));
    });
  } finally {
    for (const a of asks) a.conn.destroy();
  }
  // the helper writes session-end once the session's taps are deleted, then removes its record
  const ended = (): number => ownRecords(helper.auditSince(mark), { pids: [], taps }).filter((r) => r.event === 'session-end').length;
  await waitFor(() => ended() === asks.length && helper.stateFiles().every((f) => records.includes(f)), PATIENCE_MS, {
    what: `${context}: the sessions of the follow-up make-nics to end`,
    describe: () => `${ended()} session-end record(s), session records ${helper.stateFiles().join(' ')}`,
  });
  const now = links(ns);
  assert.equal(taps.filter((t) => now.includes(t)), [], `${context}: session taps left after their sessions ended`);
  return { requests: asks.length, ids: asks.map((a) => a.id), taps };
}

export interface Expect {
  /** The code (or any of the codes) the error reply must carry. */
  readonly code: string | readonly string[];
  /** The id it must carry (0 when the request's id cannot be read). */
  readonly id: number;
  /** Whether the helper must close the connection after the reply (broken framing/decoding). */
  readonly closes: boolean;
  /** A pattern the message must match. */
  readonly mentions?: RegExp;
}

/**
 * Send `bytes` (one write per element) on a fresh connection as root and check everything a
 * hostile case must show. Returns the error reply.
 */
export async function hostile(bench: Bench, bytes: Buffer | readonly Buffer[], expect: Expect, context: string): Promise<ErrorReply> {
  const [reply] = await hostileSequence(bench, [{ bytes, expect, context }], context);
  return reply!;
}

export interface Step {
  readonly bytes: Buffer | readonly Buffer[];
  readonly expect: Expect;
  readonly context: string;
}

/**
 * Several hostile requests, one after the other on one fresh connection (only the last may be
 * fatal), then the same checks as `hostile`: each refused as expected, nothing created, no
 * session record, exactly one audit record each, and the helper (and the connection, when it
 * stays open) still serving.
 */
export async function hostileSequence(bench: Bench, steps: readonly Step[], context: string): Promise<ErrorReply[]> {
  const { helper, ns } = bench;
  const before = bench.baseline;
  assert.equal(helper.stateFiles(), [], `${context}: session records before the case`);
  const mark = helper.auditMark();
  const conn = await WireConnection.connect(helper.socket);
  const replies: ErrorReply[] = [];
  try {
    for (const [i, step] of steps.entries()) {
      const { expect } = step;
      if (expect.closes && i !== steps.length - 1) throw new Error('only the last step may close the connection');
      for (const chunk of Buffer.isBuffer(step.bytes) ? [step.bytes] : step.bytes as readonly Buffer[]) await conn.write(chunk);
      const next = await conn.next(PATIENCE_MS);
      const reply = assertError(next, expect.code, expect.id, step.context);
      if (expect.mentions !== undefined) assert.match(reply.error.message, expect.mentions, `${step.context}: the message`);
      if (expect.closes) {
        const after = await conn.next(PATIENCE_MS);
        assert.is(after.kind, 'closed', `${step.context}: the helper must close the connection after ${reply.error.code}, got ${JSON.stringify(after)}`);
      }
      replies.push(reply);
    }
    const closes = steps[steps.length - 1]?.expect.closes ?? false;
    assert.equal(links(ns), before, `${context}: the devices in the namespace changed`);
    assert.equal(helper.stateFiles(), [], `${context}: a session record was written`);
    if (!closes) assert.is(conn.closed, false, `${context}: the helper closed the connection after a non-fatal error`);
    const served = await stillServes(bench, context, closes ? undefined : conn);
    // one record per bad request, then a request record and a session-end record per make-nics
    // (the follow-up's records come after the bad requests', so these are all there are)
    const own = { pids: [process.pid], ids: [...steps.map((s) => s.expect.id), ...served.ids], taps: served.taps };
    const records = await ownRecordsSince(helper, mark, own, steps.length + 2 * served.requests);
    assertRecordsFor(records, 2 * served.requests, replies, context);
    return replies;
  } finally {
    conn.destroy();
  }
}

/** `records` are one record per bad request (in order), then `others` records of the follow-up requests. */
function assertRecordsFor(records: readonly AuditEntry[], others: number, replies: readonly ErrorReply[], context: string): void {
  assert.is(records.length, replies.length + others,
    `${context}: expected exactly one audit record per bad request (${replies.length}, and ${others} for the follow-up), got ${JSON.stringify(records)}`);
  replies.forEach((reply, i) => {
    const record = records[i]!;
    assert.ok(record.event === 'request' || record.event === 'connection', `${context}: record ${i} ${JSON.stringify(record)}`);
    assert.is(record['code'], reply.error.code, `${context}: the audit record's code (${JSON.stringify(record)})`);
    assert.ok(record['result'] !== 'ok', `${context}: the audit record says ok`);
  });
}

/** `records` are the bad request's record followed by `others` records of the follow-up requests. */
export function assertOneRecordFor(records: readonly AuditEntry[], others: number, reply: ErrorReply, context: string): void {
  assertRecordsFor(records, others, [reply], context);
}

// --- ordinary users, through agent.ts ---------------------------------------------------------

export class Agent {
  readonly user: TestUser;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #seq = 0;
  #buffer = '';
  #stderr = '';

  private constructor(user: TestUser, child: ChildProcess) {
    this.user = user;
    this.#child = child;
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.#buffer += chunk;
      const lines = this.#buffer.split('\n');
      this.#buffer = lines.pop() ?? '';
      for (const line of lines) {
        const answer = JSON.parse(line) as { seq: number; ok: boolean; value?: unknown; error?: string };
        const p = this.#pending.get(answer.seq);
        this.#pending.delete(answer.seq);
        if (answer.ok) p?.resolve(answer.value);
        else p?.reject(new Error(`agent (${user.name}): ${answer.error ?? '?'}`));
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => { this.#stderr += chunk; });
    child.on('exit', () => {
      for (const p of this.#pending.values()) p.reject(new Error(`agent (${user.name}) exited: ${this.#stderr}`));
      this.#pending.clear();
    });
  }

  /** An agent process running as `user` (an ordinary user) in the namespace. */
  static start(ns: Netns, user: TestUser): Agent {
    const child = ns.spawn([process.execPath, AGENT], { user: user.name, stdio: ['pipe', 'pipe', 'pipe'] });
    return new Agent(user, child);
  }

  call(command: AgentCommand): Promise<unknown> {
    const seq = (this.#seq += 1);
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      this.#child.stdin?.write(`${JSON.stringify({ ...command, seq })}\n`);
    });
  }

  async open(conn: string, path: string): Promise<{ pid: number; uid: number }> {
    return await this.call({ op: 'open', conn, path }) as { pid: number; uid: number };
  }

  async ask(conn: string, value: object, timeoutMs = PATIENCE_MS): Promise<Next> {
    return await this.call({ op: 'ask', conn, value, timeoutMs }) as Next;
  }

  async send(conn: string, bytes: Buffer): Promise<void> {
    await this.call({ op: 'send', conn, hex: bytes.toString('hex') });
  }

  async next(conn: string, timeoutMs = PATIENCE_MS): Promise<Next> {
    return await this.call({ op: 'next', conn, timeoutMs }) as Next;
  }

  async close(conn: string): Promise<void> {
    await this.call({ op: 'close', conn });
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin?.end();
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(killer);
  }
}

// --- hostile users, through hostile-client.ts ---------------------------------------------------

const HOSTILE_CLIENT = fileURLToPath(new URL('./hostile-client.js', import.meta.url));
/** Not compiled: run from the sources (this file runs as dist/test/helper/server/support.js). */
const UNREAD_CLIENT = fileURLToPath(new URL('../../../../test/helper/server/unread-client.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

/** What hostile-client.ts or unread-client.py says, one object a line. */
export interface HostileEvent {
  readonly event: string;
  readonly i?: number;
  readonly [key: string]: unknown;
}

export interface Hostile extends Watched {
  /** Its events so far, in order. */
  events(): HostileEvent[];
  /** Waits until `check` holds for the events so far; resolves with them. */
  until(what: string, check: (events: readonly HostileEvent[]) => boolean, deadlineMs?: number): Promise<HostileEvent[]>;
  /** End stdin: a holding client closes its connections and exits. */
  release(): void;
}

/** hostile-client.ts as `user` in `ns`, with `spec` (see that file). */
export function startHostile(ns: Netns, user: TestUser, spec: Record<string, unknown>): Hostile {
  return hostileProcess(ns, user, [process.execPath, HOSTILE_CLIENT, JSON.stringify(spec)]);
}

/** unread-client.py as `user` in `ns`, with `spec` (see that file). */
export function startUnreadClient(ns: Netns, user: TestUser, spec: Record<string, unknown>): Hostile {
  return hostileProcess(ns, user, [PYTHON, UNREAD_CLIENT, JSON.stringify(spec)]);
}

function hostileProcess(ns: Netns, user: TestUser, argv: readonly string[]): Hostile {
  const w = watch(ns.spawn(argv, { user: user.name, cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] }));
  const events = (): HostileEvent[] => w.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as HostileEvent);
  return {
    ...w,
    events,
    async until(what, check, deadlineMs = PATIENCE_MS) {
      const { value } = await waitFor(() => {
        const now = events();
        const failed = now.find((e) => e.event === 'error');
        if (failed !== undefined) throw new Error(`${argv[1] ?? '?'} (${user.name}): ${String(failed['message'])}`);
        return check(now) ? now : undefined;
      }, deadlineMs, { what, describe: () => `${w.stdout().slice(-600)} stderr: ${w.stderr().slice(-600)}` });
      return value;
    },
    release: () => {
      w.child.stdin?.end();
    },
  };
}

/** A bench with userspace Open vSwitch bridges and one ordinary user whose agent talks to the helper. */
export interface UserBench {
  readonly bench: Bench;
  readonly ovs: Ovs;
  readonly user: TestUser;
  readonly agent: Agent;
}

/**
 * Registers on `suite` a bench (openBench), OVS with `ovsBridges`, a test user (`tag`) and its
 * agent, all removed after the suite; `prepare` (the policy, bridge settings) runs once they
 * exist. Returns the fixture's accessor (which fails a test run without it).
 */
export function userBench(suite: Test, tag: string, ovsBridges: readonly string[], prepare: (f: UserBench) => void): () => UserBench {
  let bench: Bench | undefined;
  let ovs: Ovs | undefined;
  let user: TestUser | undefined;
  let agent: Agent | undefined;
  let made: UserBench | undefined;
  suite.before(async () => {
    bench = await openBench({ policy: 'allow br0 root\n' });
    ovs = startOvs(bench.ns, { bridges: [...ovsBridges] });
    user = createTestUser(tag);
    agent = Agent.start(bench.ns, user);
    made = { bench, ovs, user, agent };
    prepare(made);
  });
  suite.after(async () => {
    await agent?.stop();
    ovs?.stop();
    await closeBench(bench);
    if (user !== undefined) removeTestUser(user);
  });
  return () => made ?? fail('the suite\'s set-up did not run');
}
