// Fd handoff's native steps together (issue 11's wire test, at the addon level; root, a fresh
// namespace): a tap opened by openTap and attached to a bridge is sent with sendWithFds to a
// peer that is not the project's own (Python's recvmsg), one fd per queue; the sender keeps no
// copy, so the tap outlives the sender's SIGKILL while the peer holds the fds, and is gone within
// 2 s of the peer closing them.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createNetns, sweepStaleNetns } from '../../support/netns.js';
import { PATIENCE_MS, waitFor, within } from '../../support/wait.js';
import { requireRoot } from '../net/support.js';

const WORKER = fileURLToPath(new URL('./tap-worker.js', import.meta.url));
const PEER = fileURLToPath(new URL('../../../../test/support/fd-peer.py', import.meta.url));
/** The contract: a closed fd tap is gone within 2 s. */
const CONTRACT_MS = 2_000;

test.before(() => {
  sweepStaleNetns();
});

test('a peer that is not ours gets one fd per queue of an attached, non-persistent tap that dies with its last fd, whoever was killed before', async () => {
  requireRoot();
  const ns = createNetns({ bridges: ['br0'] });
  const dir = mkdtempSync(join(tmpdir(), 'xkvm-handoff-'));
  const path = join(dir, 's');
  const peer = spawn('/usr/bin/python3', [PEER, JSON.stringify({ listen: path, expect: 5, hold: true })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const worker = ns.spawn([process.execPath, WORKER, JSON.stringify({ name: 'xkvmhand0', queues: 3, uid: 4301 })], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const peerLines = createInterface({ input: peer.stdout! })[Symbol.asyncIterator]();
    const workerLines = createInterface({ input: worker.stdout! })[Symbol.asyncIterator]();
    const line = async (it: AsyncIterator<string>, what: string): Promise<string> => {
      const r = await within(it.next(), PATIENCE_MS, what);
      if (r.done === true) throw new Error(`${what}: the process ended`);
      return r.value;
    };
    assert.equal(JSON.parse(await line(peerLines, 'the peer to listen')), { listening: true });
    const opened = JSON.parse(await line(workerLines, 'the tap')) as { name: string; fds: number[] };
    assert.is(opened.name, 'xkvmhand0');
    ns.ip('link', 'set', 'xkvmhand0', 'master', 'br0');

    worker.stdin!.write(`send ${path}\n`);
    assert.is(await line(workerLines, 'the worker to send'), 'sent');
    const report = JSON.parse(await line(peerLines, "the peer's report")) as { total: number; fdsAt: { at: number; targets: string[]; iffs: string[] }[] };
    assert.is(report.total, 5);
    assert.is(report.fdsAt.length, 1);
    assert.is(report.fdsAt[0]?.at, 0);
    assert.equal(report.fdsAt[0]?.targets, ['/dev/net/tun', '/dev/net/tun', '/dev/net/tun']);
    assert.equal(report.fdsAt[0]?.iffs, ['xkvmhand0', 'xkvmhand0', 'xkvmhand0']);

    const exited = once(worker, 'exit');
    worker.kill('SIGKILL');
    await within(exited, PATIENCE_MS, 'the worker to die');
    const link = ns.ip('-d', 'link', 'show', 'dev', 'xkvmhand0');
    assert.match(link, /master br0/);
    assert.match(link, /persist off/);
    assert.match(link, /numqueues 3 /);

    const closed = Date.now();
    peer.stdin!.end();
    await waitFor(() => ns.exec(['/usr/sbin/ip', 'link', 'show', 'dev', 'xkvmhand0']).status !== 0, CONTRACT_MS, { what: 'the tap to be gone', since: closed });
  } finally {
    peer.kill('SIGKILL');
    worker.kill('SIGKILL');
    ns.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
