// makeFdNics (client/src/helper/fd-request.ts) against a scripted stand-in helper that sends
// fds with its reply as the real helper does (SCM_RIGHTS through the helper's own addon): the
// request asks for handoff "fd" without a lifetime, the fds arrive split by nic in queue order,
// and every mismatch between the fds and the reply closes all of them and the connection.
import { closeSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { ClientError } from '../../../client/src/errors.js';
import { makeFdNics } from '../../../client/src/helper/session.js';
import { closeFds } from '../../../client/src/native/fdpass.js';
import { formatMacLockRefusal } from '../../../shared/src/protocol/mac-lock.js';
import type { NicRequest } from '../../../shared/src/protocol/messages.js';
import { errorReply, idOf, withFakeHelper, within, type ReceivedRequest, type Script } from '../../support/fake-helper.js';

const DEADLINE = 5000;

/** Files q0..q(n-1) in a fresh directory, opened; `fn` gets their fds and paths. */
async function withFiles(n: number, fn: (fds: number[], paths: string[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-fd-request-'));
  const paths = Array.from({ length: n }, (_, i) => join(dir, `q${i}`));
  for (const p of paths) writeFileSync(p, p);
  const fds = paths.map((p) => openSync(p, 'r'));
  try {
    await fn(fds, paths);
  } finally {
    closeFds(fds);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Paths of this process's open fds that point into `dir`'s files. */
function openInto(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (paths.includes(target)) out.push(target);
    } catch {
      // gone meanwhile (readdir's own fd)
    }
  }
  return out;
}

function nicsOf(request: ReceivedRequest): NicRequest[] {
  assert.not.ok('invalid' in request.parsed, `the helper's validator refuses the request: ${JSON.stringify(request.parsed)}`);
  return (request.parsed as { nics: NicRequest[] }).nics;
}

function made(request: ReceivedRequest, queues?: (i: number) => number): object {
  const nics = nicsOf(request).map((n, i) => {
    const q = queues?.(i) ?? n.queues ?? 1;
    return { bridge: n.bridge, tap: `xkvmfd${i}`, type: 'brctl', mtu: 1500, ...(q > 1 ? { queues: q } : {}), ...(n.mac === undefined ? {} : { mac: n.mac }) };
  });
  return { v: 1, id: idOf(request), ok: true, nics };
}

test('the request asks for handoff "fd" and no lifetime; one fd per queue arrives, split by nic in reply order, O_CLOEXEC', () => withFiles(4, async (fds, paths) => {
  await withFakeHelper((r) => ({ reply: made(r), fds }), async (helper) => {
    const taps = await within(DEADLINE, 'makeFdNics', makeFdNics([{ bridge: 'br0', queues: 3 }, { bridge: 'br1' }], helper.location));
    try {
      const value = helper.requests[0]!.value as Record<string, unknown>;
      assert.equal(Object.keys(value).sort(), ['handoff', 'id', 'nics', 'op', 'v']);
      assert.is(value['handoff'], 'fd');
      assert.equal(taps.fds.map((list) => list.map((fd) => readlinkSync(`/proc/self/fd/${fd}`))), [paths.slice(0, 3), [paths[3]]]);
      assert.equal(taps.nics.map((n) => n.tap), ['xkvmfd0', 'xkvmfd1']);
      const connection = await helper.connection();
      assert.not.ok(connection.hasEnded, 'the connection stays open while the VM runs');
      taps.connection.close();
      await within(DEADLINE, 'the connection to end', connection.ended);
    } finally {
      closeFds(taps.fds.flat());
    }
  });
}));

test('fewer or more fds than queues, or fds with a refusal: every fd that came is closed, and so is the connection', () => withFiles(3, async (fds, paths) => {
  const cases: Array<[string, Script, NicRequest[], RegExp]> = [
    ['one fd short', (r) => ({ reply: made(r), fds: fds.slice(0, 2) }), [{ bridge: 'br0', queues: 3 }], /came with 2 file descriptors, expected 3/],
    ['none at all', (r) => ({ reply: made(r) }), [{ bridge: 'br0' }], /came with 0 file descriptors, expected 1/],
    ['one too many', (r) => ({ reply: made(r), fds }), [{ bridge: 'br0', queues: 2 }], /more file descriptors than the 2 asked for/],
    ['fds with a refusal', (r) => ({ reply: errorReply(r, 'DENIED', 'no'), fds: fds.slice(0, 1) }), [{ bridge: 'br0' }], /refusal came with 1 file descriptors, expected 0/],
  ];
  for (const [what, script, nics, message] of cases) {
    await withFakeHelper(script, async (helper) => {
      const error = await within(DEADLINE, what, makeFdNics(nics, helper.location)).then(() => undefined, (e: unknown) => e);
      assert.instance(error, ClientError, what);
      assert.match((error as Error).message, message, what);
      assert.equal(openInto(paths), paths, `${what}: only the sender's own copies are open`);
      await within(DEADLINE, 'the connection to end', (await helper.connection()).ended);
    });
  }
}));

test('a reply whose queues differ from the request is refused and its fds are closed', () => withFiles(2, async (fds, paths) => {
  await withFakeHelper((r) => ({ reply: made(r, () => 2), fds }), async (helper) => {
    const error = await within(DEADLINE, 'makeFdNics', makeFdNics([{ bridge: 'br0' }, { bridge: 'br1' }], helper.location)).then(() => undefined, (e: unknown) => e);
    assert.instance(error, ClientError);
    assert.match((error as Error).message, /more file descriptors than the 2 asked for|2 queues on br0, asked for 1/);
    assert.equal(openInto(paths), paths);
  });
}));

test("the helper's refusal is the error, escaped, and the mac-lock retry works over the fd connection", () => withFiles(1, async (fds) => {
  await withFakeHelper((r) => ({ reply: errorReply(r, 'DENIED', 'br0: not allowed\x1b[31m') }), async (helper) => {
    const error = await within(DEADLINE, 'makeFdNics', makeFdNics([{ bridge: 'br0' }], helper.location)).then(() => undefined, (e: unknown) => e);
    assert.instance(error, ClientError);
    assert.match((error as Error).message, /the helper refused: br0: not allowed\\e\[31m \[DENIED\]/);
  });
  const lock = formatMacLockRefusal({ user: 'alice', missing: [{ index: 0, bridge: 'br0', rule: '/etc/xkvm/helper.conf:3' }] });
  const script: Script = (r, n) => (n === 0 ? { reply: errorReply(r, 'BAD_REQUEST', lock) } : { reply: made(r), fds });
  await withFakeHelper(script, async (helper) => {
    const taps = await within(DEADLINE, 'makeFdNics', makeFdNics([{ bridge: 'br0' }], helper.location, { chooseMac: () => '52:54:00:00:00:09' }));
    closeFds(taps.fds.flat());
    taps.connection.close();
    assert.equal(nicsOf(helper.requests[1]!), [{ bridge: 'br0', mac: '52:54:00:00:00:09' }]);
    assert.is(helper.connections.length, 1);
  });
}));

test('the helper ending the connection, or sending garbage, is an error naming it; a missing socket says so', async () => {
  await withFakeHelper(() => ({ close: true }), async (helper) => {
    const error = await within(DEADLINE, 'makeFdNics', makeFdNics([{ bridge: 'br0' }], helper.location)).then(() => undefined, (e: unknown) => e);
    assert.match((error as Error).message, /the helper \(.*helper\.sock\) closed the connection/);
  });
  await withFakeHelper(() => ({ raw: Buffer.from([0xff, 0xff, 0xff, 0xff]) }), async (helper) => {
    const error = await within(DEADLINE, 'makeFdNics', makeFdNics([{ bridge: 'br0' }], helper.location)).then(() => undefined, (e: unknown) => e);
    assert.match((error as Error).message, /sent something unreadable/);
    await within(DEADLINE, 'the connection to end', (await helper.connection()).ended);
  });
  const error = await makeFdNics([{ bridge: 'br0' }], { kind: 'socket', path: '/nonexistent/helper.sock', from: 'XKVM_HELPER_SOCKET' }).then(() => undefined, (e: unknown) => e);
  assert.match((error as Error).message, /cannot reach the helper at \/nonexistent\/helper\.sock: no such socket/);
});

test('nothing of a failed request stays open in the client', () => withFiles(1, async (fds) => {
  const before = readdirSync('/proc/self/fd').length;
  await withFakeHelper((r) => ({ reply: made(r), fds: [fds[0]!, fds[0]!] }), async (helper) => {
    await within(DEADLINE, 'makeFdNics', makeFdNics([{ bridge: 'br0' }], helper.location)).then(() => assert.unreachable('accepted'), () => {});
    await within(DEADLINE, 'the connection to end', (await helper.connection()).ended);
  });
  closeSync(openSync('/dev/null', 'r'));
  assert.is(readdirSync('/proc/self/fd').length, before);
}));

test.run();
