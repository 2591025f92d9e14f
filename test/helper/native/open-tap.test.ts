// The helper's openTap (fd handoff's tap, issue 11), for real in fresh network namespaces (root):
// a tap that is not persistent, owned by the caller, one fd per queue, that the kernel removes
// when the last fd is closed, and that never joins a device that exists already.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { createNetns, sweepStaleNetns, type Netns } from '../../support/netns.js';
import { PATIENCE_MS, waitFor, within } from '../../support/wait.js';
import { requireRoot } from '../net/support.js';

const WORKER = fileURLToPath(new URL('./tap-worker.js', import.meta.url));
const OWNER = 4301;
/** tun_flags bits (include/uapi/linux/if_tun.h). */
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFF_MULTI_QUEUE = 0x0100;
const IFF_PERSIST = 0x0800;

interface Opened {
  readonly pid: number;
  readonly name: string;
  readonly fds: number[];
}

interface Worker {
  readonly child: ChildProcess;
  readonly first: Opened | { error: { name: string; code: string; message: string } };
  close(): Promise<void>;
  end(): Promise<void>;
}

async function startWorker(ns: Netns, job: { name: string; queues: number; uid: number }): Promise<Worker> {
  const child = ns.spawn([process.execPath, WORKER, JSON.stringify(job)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await within(lines.next(), PATIENCE_MS, 'a line from the tap worker');
    if (r.done === true) throw new Error('the tap worker ended early');
    return r.value;
  };
  const first = JSON.parse(await next()) as Worker['first'];
  return {
    child,
    first,
    async close() {
      child.stdin!.write('close\n');
      assert.is(await next(), 'closed');
    },
    async end() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin!.end();
      await within(exited, PATIENCE_MS, 'the tap worker to exit');
    },
  };
}

function opened(w: Worker): Opened {
  if ('error' in w.first) throw new Error(`openTap failed: ${JSON.stringify(w.first.error)}`);
  return w.first;
}

function tunFlags(ns: Netns, tap: string): number {
  const r = ns.exec(['/usr/bin/cat', `/sys/class/net/${tap}/tun_flags`]);
  if (r.status !== 0) throw new Error(`cannot read tun_flags of ${tap}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

function exists(ns: Netns, tap: string): boolean {
  return ns.exec(['/usr/sbin/ip', 'link', 'show', 'dev', tap]).status === 0;
}

/** The device a tun fd of process `pid` is attached to, from its fdinfo ("iff:\tNAME"). */
function iffOf(pid: number, fd: number): string | undefined {
  return /^iff:\s*(\S+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
}

/** The fd's open flags (octal in fdinfo). */
function fdFlags(pid: number, fd: number): number {
  const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
  return m === null ? NaN : parseInt(m[1]!, 8);
}
const O_CLOEXEC = 0o2000000;

function inNetns(fn: (ns: Netns) => Promise<void>): () => Promise<void> {
  return async () => {
    requireRoot();
    const ns = createNetns();
    try {
      await fn(ns);
    } finally {
      ns.destroy();
    }
  };
}

test.before(() => {
  sweepStaleNetns();
});

test('a tap opened for fd handoff is a vnet-header tap owned by the caller and not persistent', inNetns(async (ns) => {
  const w = await startWorker(ns, { name: 'xkvmfd%d', queues: 1, uid: OWNER });
  try {
    const tap = opened(w);
    assert.match(tap.name, /^xkvmfd\d+$/);
    assert.is(tap.fds.length, 1);
    const flags = tunFlags(ns, tap.name);
    assert.is(flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, `tun_flags ${flags.toString(16)}`);
    assert.is(flags & IFF_PERSIST, 0, `tun_flags ${flags.toString(16)}`);
    assert.is(flags & IFF_MULTI_QUEUE, 0, `tun_flags ${flags.toString(16)}`);
    assert.is(ns.exec(['/usr/bin/cat', `/sys/class/net/${tap.name}/owner`]).stdout.trim(), String(OWNER));
    assert.is(iffOf(tap.pid, tap.fds[0]!), tap.name);
    assert.ok(fdFlags(tap.pid, tap.fds[0]!) & O_CLOEXEC, 'the fd is O_CLOEXEC');
  } finally {
    await w.end();
  }
}));

test('the tap vanishes when its fds are closed, with no one deleting it', inNetns(async (ns) => {
  const w = await startWorker(ns, { name: 'xkvmfdgone', queues: 1, uid: OWNER });
  try {
    const tap = opened(w);
    assert.ok(exists(ns, tap.name));
    await w.close();
    await waitFor(() => !exists(ns, tap.name), PATIENCE_MS, { what: `${tap.name} to vanish` });
  } finally {
    await w.end();
  }
}));

test('the tap vanishes when the process holding it is killed', inNetns(async (ns) => {
  const w = await startWorker(ns, { name: 'xkvmfdkill', queues: 2, uid: OWNER });
  const tap = opened(w);
  assert.ok(exists(ns, tap.name));
  w.child.kill('SIGKILL');
  await w.end();
  await waitFor(() => !exists(ns, tap.name), PATIENCE_MS, { what: `${tap.name} to vanish` });
}));

test('a multi-queue tap is opened once per queue, every fd on the same device', inNetns(async (ns) => {
  const w = await startWorker(ns, { name: 'xkvmfdmq', queues: 4, uid: OWNER });
  try {
    const tap = opened(w);
    assert.is(tap.name, 'xkvmfdmq');
    assert.is(tap.fds.length, 4);
    assert.is(new Set(tap.fds).size, 4);
    assert.ok(tunFlags(ns, tap.name) & IFF_MULTI_QUEUE, 'multi_queue');
    for (const fd of tap.fds) assert.is(iffOf(tap.pid, fd), tap.name);
    assert.match(ns.ip('-d', 'link', 'show', 'dev', tap.name), /numqueues 4 /);
    await w.close();
    await waitFor(() => !exists(ns, tap.name), PATIENCE_MS, { what: `${tap.name} to vanish` });
  } finally {
    await w.end();
  }
}));

test("a name taken by a tap in use is refused (BAD_NAME), not joined", inNetns(async (ns) => {
  const holder = await startWorker(ns, { name: 'xkvmfdmine', queues: 2, uid: OWNER });
  try {
    opened(holder);
    const again = await startWorker(ns, { name: 'xkvmfdmine', queues: 2, uid: 0 });
    try {
      assert.ok('error' in again.first, JSON.stringify(again.first));
      assert.is(again.first.error.code, 'BAD_NAME');
      assert.match(ns.ip('-d', 'link', 'show', 'dev', 'xkvmfdmine'), /numqueues 2 /);
    } finally {
      await again.end();
    }
  } finally {
    await holder.end();
  }
}));

test("someone's persistent tap is never joined, and is left as it was", inNetns(async (ns) => {
  ns.ip('tuntap', 'add', 'dev', 'xkvmfdpers', 'mode', 'tap', 'vnet_hdr', 'user', '4302');
  const w = await startWorker(ns, { name: 'xkvmfdpers', queues: 1, uid: OWNER });
  try {
    assert.ok('error' in w.first, JSON.stringify(w.first));
    assert.is(w.first.error.code, 'BAD_NAME');
    assert.is(ns.exec(['/usr/bin/cat', '/sys/class/net/xkvmfdpers/owner']).stdout.trim(), '4302');
  } finally {
    await w.end();
  }
  assert.ok(exists(ns, 'xkvmfdpers'));
}));

test('a failure leaves no tap behind and says why', inNetns(async (ns) => {
  const w = await startWorker(ns, { name: 'xkvmfdbad', queues: 300, uid: OWNER });
  try {
    assert.ok('error' in w.first, JSON.stringify(w.first));
    assert.is(w.first.error.code, 'SYSTEM_ERROR');
    assert.match(w.first.error.message, /at most 256 queues/);
    assert.not.ok(exists(ns, 'xkvmfdbad'));
  } finally {
    await w.end();
  }
}));

test.run();
