// The client's fd-passing addon (fdpass.node; issue 11's receiving side): fds sent as SCM_RIGHTS
// arrive in order and O_CLOEXEC, round trip addon to addon and to and from a Python peer; more
// fds than asked for are refused and closed; an fd is handed to a child through node-pty only
// when its close-on-exec flag is cleared on purpose.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { receiveWithFds, sendWithFds, setCloseOnExec, socketPair } from '../../../client/src/native/fdpass.js';
import { PATIENCE_MS, within } from '../../support/wait.js';

const PEER = fileURLToPath(new URL('../../../../test/support/fd-peer.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const O_CLOEXEC = 0o2000000;

function isCloexec(fd: number): boolean {
  const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return m !== null && (parseInt(m[1]!, 8) & O_CLOEXEC) !== 0;
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Files a, b, c in a fresh directory (removed after `fn`). */
async function withFiles(fn: (paths: string[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-fdpass-'));
  const paths = ['a', 'b', 'c'].map((n) => join(dir, n));
  for (const p of paths) writeFileSync(p, p);
  try {
    await fn(paths);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function withPair(fn: (a: number, b: number) => Promise<void>): Promise<void> {
  const [a, b] = socketPair();
  try {
    await fn(a, b);
  } finally {
    for (const fd of [a, b]) {
      try {
        closeSync(fd);
      } catch {
        // closed by the test already
      }
    }
  }
}

/** Runs fd-peer.py with `spec`, `fd` as its fd 3; resolves with what it printed. */
async function peer(spec: object, fd: number): Promise<Record<string, unknown>> {
  const child = spawn(PYTHON, [PEER, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit', fd] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await within(once(child, 'exit'), PATIENCE_MS, 'the Python peer to finish')) as [number | null];
  assert.is(code, 0, `fd-peer.py exited with ${code}: ${out}`);
  return JSON.parse(out) as Record<string, unknown>;
}

test('a socket pair is two connected O_CLOEXEC sockets', () => withPair(async (a, b) => {
  assert.ok(isCloexec(a) && isCloexec(b));
  assert.match(readlinkSync(`/proc/self/fd/${a}`), /^socket:/);
}));

test('fds sent by the addon arrive in order with the bytes, each O_CLOEXEC', () => withFiles((paths) => withPair(async (a, b) => {
  const fds = paths.map((p) => openSync(p, 'r'));
  try {
    await sendWithFds(a, Buffer.from('reply'), fds);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const got = await receiveWithFds(b, 4096, 8, PATIENCE_MS);
  try {
    assert.is(got.data.toString(), 'reply');
    assert.equal(got.fds.map((fd) => readlinkSync(`/proc/self/fd/${fd}`)), paths);
    for (const fd of got.fds) assert.ok(isCloexec(fd), `fd ${fd} is O_CLOEXEC`);
  } finally {
    for (const fd of got.fds) closeSync(fd);
  }
})));

test('fds sent by a Python peer arrive in order with the bytes', () => withFiles((paths) => withPair(async (a, b) => {
  const sent = peer({ fd: 3, send: { data: Buffer.from('from python').toString('hex'), files: paths } }, a);
  const got = await receiveWithFds(b, 4096, 8, PATIENCE_MS);
  await sent;
  try {
    assert.is(got.data.toString(), 'from python');
    assert.equal(got.fds.map((fd) => readlinkSync(`/proc/self/fd/${fd}`)), paths);
    for (const fd of got.fds) assert.ok(isCloexec(fd));
  } finally {
    for (const fd of got.fds) closeSync(fd);
  }
})));

test('a Python peer receives the fds the addon passes on, as qemu gets its tap from a bridge helper', () => withFiles((paths) => withPair(async (a, b) => {
  const fds = paths.slice(0, 1).map((p) => openSync(p, 'r'));
  const report = peer({ fd: 3, expect: 1, maxFds: 1 }, b);
  try {
    await sendWithFds(a, Buffer.from([0]), fds);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const fdsAt = (await report)['fdsAt'] as { at: number; targets: string[] }[];
  assert.equal(fdsAt.map(({ at, targets }) => ({ at, targets })), [{ at: 0, targets: paths.slice(0, 1) }]);
})));

test('more fds than asked for are refused, and none of them stays open', () => withFiles((paths) => withPair(async (a, b) => {
  const fds = paths.map((p) => openSync(p, 'r'));
  try {
    await sendWithFds(a, Buffer.from('three'), fds);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const before = openFds();
  const error = await receiveWithFds(b, 4096, 2, PATIENCE_MS).then(() => undefined, (e: unknown) => e);
  assert.instance(error, ClientError);
  assert.match((error as ClientError).message, /more file descriptors came than expected/);
  assert.is(openFds(), before);
})));

test('the end of the stream is an empty message without fds', () => withPair(async (a, b) => {
  closeSync(a);
  const got = await receiveWithFds(b, 4096, 8, PATIENCE_MS);
  assert.is(got.data.length, 0);
  assert.equal(got.fds, []);
}));

test('nothing arriving in time is an error', () => withPair(async (_a, b) => {
  const error = await receiveWithFds(b, 4096, 8, 50).then(() => undefined, (e: unknown) => e);
  assert.instance(error, ClientError);
  assert.match((error as ClientError).message, /nothing arrived in time/);
}));

test('a child spawned through node-pty inherits an fd only when its close-on-exec flag is cleared', () => withFiles((paths) => withPair(async (a, b) => {
  const fds = paths.slice(0, 2).map((p) => openSync(p, 'r'));
  try {
    await sendWithFds(a, Buffer.from('x'), fds);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const got = await receiveWithFds(b, 16, 8, PATIENCE_MS);
  const [handed, kept] = got.fds as [number, number];
  try {
    setCloseOnExec(handed, false);
    assert.not.ok(isCloexec(handed));
    const pty = await import('node-pty');
    const child = pty.spawn('/usr/bin/ls', ['/proc/self/fd'], { cols: 200, rows: 20, env: { PATH: '/usr/bin:/bin' } });
    let out = '';
    child.onData((d) => (out += d));
    await within(new Promise<void>((resolve) => child.onExit(() => resolve())), PATIENCE_MS, 'ls through node-pty to exit');
    const inherited = out.trim().split(/\s+/).map(Number);
    assert.ok(inherited.includes(handed), `fd ${handed} inherited: ${out}`);
    assert.not.ok(inherited.includes(kept), `fd ${kept} not inherited: ${out}`);
  } finally {
    closeSync(handed);
    closeSync(kept);
  }
})));

test.run();
