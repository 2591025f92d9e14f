// The helper's sendWithFds (fd handoff's reply, issue 11): a peer that is not the project's own
// (Python's socket.recvmsg) gets exactly the fds, in order, on the first byte of the reply, over a
// listening Unix socket and over a socketpair, even behind bytes Node still had queued and when
// the reply does not fit in the socket's buffer at once.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { sendWithFds } from '../../../helper/src/native/fd-handoff.js';
import { NetError } from '../../../helper/src/net/errors.js';
import { socketPair } from '../../../client/src/native/fdpass.js';
import { PATIENCE_MS, within } from '../../support/wait.js';

const PEER = fileURLToPath(new URL('../../../../test/support/fd-peer.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

interface PeerReport {
  readonly total: number;
  readonly sha256: string;
  readonly fdsAt: { at: number; targets: string[]; iffs: (string | null)[] }[];
  readonly ctrunc: boolean;
}

/** Runs fd-peer.py with `spec` (and `fd` as its fd 3); resolves with its report. */
async function peer(spec: object, fd?: number): Promise<PeerReport> {
  const child = spawn(PYTHON, [PEER, JSON.stringify(spec)], {
    stdio: fd === undefined ? ['ignore', 'pipe', 'inherit'] : ['ignore', 'pipe', 'inherit', fd],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await within(once(child, 'exit'), PATIENCE_MS, 'the Python peer to finish')) as [number | null];
  assert.is(code, 0, `fd-peer.py exited with ${code}: ${out}`);
  return JSON.parse(out) as PeerReport;
}

/** Three files a, b, c in a fresh directory, opened read-only; closed and removed by `fn`'s end. */
async function withFiles(fn: (paths: string[], fds: number[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-sendfds-'));
  const paths = ['a', 'b', 'c'].map((n) => join(dir, n));
  for (const p of paths) writeFileSync(p, p);
  const fds = paths.map((p) => openSync(p, 'r'));
  try {
    await fn(paths, fds);
  } finally {
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Where the fds came and what they are, without the tun details. */
const arrivals = (report: PeerReport): { at: number; targets: string[] }[] => report.fdsAt.map(({ at, targets }) => ({ at, targets }));

test('a peer on a listening Unix socket gets the fds in order with the first byte of the reply', () => withFiles(async (paths, fds) => {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-sendfds-sock-'));
  const server = createServer();
  try {
    server.listen(join(dir, 's'));
    await once(server, 'listening');
    const before = Buffer.from('an earlier reply;');
    const reply = Buffer.from('the reply that carries the fds');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const report = peer({ connect: join(dir, 's'), expect: before.length + reply.length });
    const [socket] = await within(accepted, PATIENCE_MS, 'the peer to connect');
    socket.write(before);
    await sendWithFds(socket, reply, fds);
    const got = await report;
    socket.destroy();
    assert.is(got.total, before.length + reply.length);
    assert.is(got.sha256, sha256(Buffer.concat([before, reply])));
    assert.equal(arrivals(got), [{ at: before.length, targets: paths }]);
    assert.is(got.ctrunc, false);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}));

test('over a socketpair, behind megabytes Node still had queued, a reply too big for the buffer arrives whole with its fds at its start', () => withFiles(async (paths, fds) => {
  const [mine, theirs] = socketPair();
  const socket = new Socket({ fd: mine, readable: true, writable: true });
  try {
    const before = Buffer.alloc(1 << 20, 7);
    const reply = Buffer.alloc(4 << 20);
    for (let i = 0; i < reply.length; i += 4) reply.writeUInt32LE(i, i);
    const report = peer({ fd: 3, expect: before.length + reply.length, delayMs: 300 }, theirs);
    closeSync(theirs);
    // The peer does not read yet: most of `before` stays in Node's write queue.
    socket.write(before);
    assert.ok(socket.writableLength > 0, 'Node still holds part of the earlier bytes');
    await sendWithFds(socket, reply, fds);
    const got = await report;
    assert.is(got.total, before.length + reply.length);
    assert.is(got.sha256, sha256(Buffer.concat([before, reply])));
    assert.equal(arrivals(got), [{ at: before.length, targets: paths }]);
  } finally {
    socket.destroy();
  }
}));

test('bytes Node holds back (a corked socket) still go out before the reply and its fds', () => withFiles(async (paths, fds) => {
  const [mine, theirs] = socketPair();
  const socket = new Socket({ fd: mine, readable: true, writable: true });
  try {
    const before = Buffer.from('written while corked;');
    const reply = Buffer.from('the reply');
    const report = peer({ fd: 3, expect: before.length + reply.length }, theirs);
    closeSync(theirs);
    socket.cork();
    socket.write(before);
    assert.is(socket.writableLength, before.length);
    const uncork = setTimeout(() => socket.uncork(), 100);
    try {
      await sendWithFds(socket, reply, fds);
    } finally {
      clearTimeout(uncork);
    }
    const got = await report;
    assert.is(got.sha256, sha256(Buffer.concat([before, reply])));
    assert.equal(arrivals(got), [{ at: before.length, targets: paths }]);
  } finally {
    socket.destroy();
  }
}));

test('a reply to a peer that has gone is an error, not a hang', () => withFiles(async (_paths, fds) => {
  const [mine, theirs] = socketPair();
  const socket = new Socket({ fd: mine, readable: true, writable: true });
  socket.on('error', () => {});
  try {
    closeSync(theirs);
    const error = await sendWithFds(socket, Buffer.from('x'), fds).then(() => undefined, (e: unknown) => e);
    assert.instance(error, NetError);
    assert.is((error as NetError).code, 'SYSTEM_ERROR');
    assert.match((error as NetError).message, /Broken pipe|reset by peer|closed/, (error as NetError).message);
  } finally {
    socket.destroy();
  }
}));

test.run();
