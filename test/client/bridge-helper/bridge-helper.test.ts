// xkvm-bridge-helper against a stand-in helper that hands over fds: in-process with a socket
// pair as qemu's fd N, and as the real bundled program with the socket as its fd 3. Success is
// one byte 0x00 carrying exactly one fd and status 0; every failure is one line on stderr,
// status 1, and nothing sent on fd N (qemu would take its fd 0 as the tap otherwise).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { bridgeHelper } from '../../../client/src/bridge-helper/bridge-helper.js';
import { closeFds, receiveWithFds, socketPair } from '../../../client/src/native/fdpass.js';
import { errorReply, idOf, withFakeHelper, within, type ReceivedRequest } from '../../support/fake-helper.js';
import { REPO_ROOT } from '../../support/reference.js';

const DEADLINE = 10_000;
const PROGRAM = join(REPO_ROOT, 'dist', 'bin', 'xkvm-bridge-helper.cjs');

async function withTapFile(fn: (fd: number, path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-bridge-helper-'));
  const path = join(dir, 'tap');
  writeFileSync(path, 'tap');
  const fd = openSync(path, 'r');
  try {
    await fn(fd, path);
  } finally {
    closeFds([fd]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function oneTap(request: ReceivedRequest): object {
  const nics = (request.parsed as { nics: Array<{ bridge: string }> }).nics;
  return { v: 1, id: idOf(request), ok: true, nics: nics.map((n) => ({ bridge: n.bridge, tap: 'xkvmbh0', type: 'brctl', mtu: 1500 })) };
}

/** What qemu would read from its end: one recvmsg with room for one fd (closed afterwards). */
async function qemuReads(fd: number): Promise<{ data: number[]; targets: string[] }> {
  const got = await receiveWithFds(fd, 1, 1, DEADLINE);
  const targets = got.fds.map((f) => readlinkSync(`/proc/self/fd/${f}`));
  closeFds(got.fds);
  return { data: [...got.data], targets };
}

async function withPair(fn: (mine: number, theirs: number) => Promise<void>): Promise<void> {
  const [mine, theirs] = socketPair();
  try {
    await fn(mine, theirs);
  } finally {
    closeFds([mine, theirs]);
  }
}

test('in process: one tap asked by fd handoff with queues 1 for --br, its fd sent on --fd as one byte 0x00, status 0', () => withTapFile((tap, path) => withPair(async (mine, theirs) => {
  await withFakeHelper((r) => ({ reply: oneTap(r), fds: [tap] }), async (helper) => {
    const lines: string[] = [];
    const status = await within(DEADLINE, 'bridgeHelper', bridgeHelper(['--br=br0', '--use-vnet', `--fd=${theirs}`], { location: helper.location, writeError: (l) => lines.push(l) }));
    assert.equal(lines, []);
    assert.is(status, 0);
    const value = helper.requests[0]!.value as Record<string, unknown>;
    assert.equal(JSON.parse(JSON.stringify(value)), { v: 1, id: value['id'], op: 'make-nics', bridges: ['br0'], handoff: 'fd' });
    assert.equal(await qemuReads(mine), { data: [0], targets: [path] });
    await within(DEADLINE, 'the helper connection to end', (await helper.connection()).ended);
  });
})));

test('in process: a refusal, a bad argument, or an fd that is not a Unix stream socket is one escaped line and status 1, with nothing sent', () => withPair(async (mine, theirs) => {
  const file = openSync('/dev/null', 'r');
  await withFakeHelper((r) => ({ reply: errorReply(r, 'DENIED', 'alice may not use br0\nfake line') }), async (helper) => {
    const cases: Array<[string[], RegExp, number]> = [
      [['--br=br0', `--fd=${theirs}`], /^xkvm-bridge-helper: the helper refused: alice may not use br0\\nfake line \[DENIED\]/, 1],
      [['--br=br0', `--fd=${theirs}`, '--vhost'], /^xkvm-bridge-helper: unknown argument '--vhost'/, 0],
      [['--br=br0', '--fd=999'], /^xkvm-bridge-helper: --fd=999 is not an open file descriptor/, 0],
      [['--br=br0', `--fd=${file}`], new RegExp(`^xkvm-bridge-helper: --fd=${file} is not a Unix stream socket`), 0],
    ];
    for (const [argv, line, asks] of cases) {
      const before = helper.requests.length;
      const lines: string[] = [];
      const status = await within(DEADLINE, 'bridgeHelper', bridgeHelper(argv, { location: helper.location, writeError: (l) => lines.push(l) }));
      assert.is(status, 1, argv.join(' '));
      assert.is(lines.length, 1, argv.join(' '));
      assert.match(lines[0]!, line);
      assert.ok(lines[0]!.endsWith('\n') && lines[0]!.indexOf('\n') === lines[0]!.length - 1, 'exactly one line');
      assert.is(helper.requests.length - before, asks, `${argv.join(' ')}: the helper is asked only with good arguments`);
    }
  }).finally(() => closeFds([file]));
  const nothing = await receiveWithFds(mine, 1, 1, 200).then(() => 'something arrived', (e: NodeJS.ErrnoException) => e.cause ?? e);
  assert.match(String((nothing as { code?: string }).code ?? nothing), /ETIMEDOUT/, 'nothing was sent on fd N');
}));

/** Runs the bundled program with `socket` as its fd 3; resolves with its status and stderr. */
async function runProgram(argv: string[], socket: number, env: NodeJS.ProcessEnv): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [PROGRAM, ...argv], { stdio: ['ignore', 'ignore', 'pipe', socket], env });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const [status] = (await within(DEADLINE, 'xkvm-bridge-helper to exit', once(child, 'close'))) as [number | null];
  return { status, stderr };
}

test("as the real program, run as qemu runs it (--use-vnet --fd=3 --br=BR): the tap's fd reaches qemu's end and it exits 0 without a word", () => withTapFile((tap, path) => withPair(async (mine, theirs) => {
  await withFakeHelper((r) => ({ reply: oneTap(r), fds: [tap] }), async (helper) => {
    const result = await runProgram(['--use-vnet', '--fd=3', '--br=br0'], theirs, { XKVM_HELPER_SOCKET: helper.path });
    assert.equal(result, { status: 0, stderr: '' });
    assert.equal(await qemuReads(mine), { data: [0], targets: [path] });
  });
})));

test('as the real program: a refusal or a bad argument is one line on stderr and status 1, and qemu reads end-of-stream, not an fd', () => withPair(async (mine, theirs) => {
  await withFakeHelper((r) => ({ reply: errorReply(r, 'DENIED', 'no tap for you') }), async (helper) => {
    const env = { XKVM_HELPER_SOCKET: helper.path };
    const refused = await runProgram(['--br=br0', '--fd=3'], theirs, env);
    assert.is(refused.status, 1);
    assert.match(refused.stderr, /^xkvm-bridge-helper: the helper refused: no tap for you \[DENIED\] \(via .*helper\.sock\)\n$/);
    const bad = await runProgram(['--br=br0', '--fd=3', '--fd=4'], theirs, env);
    assert.is(bad.status, 1);
    assert.match(bad.stderr, /^xkvm-bridge-helper: --fd given twice; usage: .*\n$/);
    const noHelper = await runProgram(['--br=br0', '--fd=3'], theirs, { XKVM_HELPER_SOCKET: join(helper.dir, 'none.sock') });
    assert.is(noHelper.status, 1);
    assert.match(noHelper.stderr, /^xkvm-bridge-helper: cannot reach the helper at .*none\.sock: no such socket\n$/);
  });
  closeFds([theirs]);
  const got = await receiveWithFds(mine, 1, 1, DEADLINE);
  assert.equal([got.data.length, got.fds.length], [0, 0], 'end of stream: nothing was ever sent');
}));

test.run();
