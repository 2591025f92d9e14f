// The link-deletion watcher (issue 11: an fd tap's OVS port must go within 2 s of the tap), for
// real in a fresh network namespace (root): an fd tap that dies with its holder is reported once
// within 2 s, named taps deleted by ip too, a tap that merely leaves its bridge is not, and a
// watcher whose ip was killed starts it again, says so, and goes on reporting.
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import { watchLinkDeletions, type LinkDeleted, type LinkWatch } from '../../../helper/src/net/linkwatch.js';
import { ipTool } from '../../../helper/src/net/tools.js';
import { createNetns, sweepStaleNetns, type Netns } from '../../support/netns.js';
import { PATIENCE_MS, waitFor, within } from '../../support/wait.js';
import { requireRoot } from './support.js';

const TAP_WORKER = fileURLToPath(new URL('../native/tap-worker.js', import.meta.url));
/** The contract (docs/fd-handoff.md): a vanished fd tap is handled within 2 s. */
const CONTRACT_MS = 2_000;

interface Watched {
  readonly ns: Netns;
  readonly watch: LinkWatch;
  readonly deleted: LinkDeleted[];
  restarts: number;
}

function ifindexOf(ns: Netns, dev: string): number {
  const [link] = JSON.parse(ns.ip('-j', 'link', 'show', 'dev', dev)) as { ifindex: number }[];
  if (link === undefined) throw new Error(`no device ${dev}`);
  return link.ifindex;
}

/** Until the watcher sees events: make and delete a probe device until its deletion is reported. */
async function untilWatching(w: Watched): Promise<void> {
  let n = 0;
  await waitFor(async () => {
    const probe = `xkvmprobe${n++}`;
    w.ns.ip('tuntap', 'add', 'dev', probe, 'mode', 'tap');
    w.ns.ip('link', 'del', probe);
    try {
      await waitFor(() => w.deleted.some((d) => d.name === probe), 300, { what: 'the probe' });
      return true;
    } catch {
      return false;
    }
  }, PATIENCE_MS, { what: 'the watcher to see events' });
  w.deleted.length = 0;
}

function withWatch(fn: (w: Watched) => Promise<void>): () => Promise<void> {
  return async () => {
    requireRoot();
    const ns = createNetns({ bridges: ['br0'] });
    const w: Watched = {
      ns,
      deleted: [],
      restarts: 0,
      watch: undefined as unknown as LinkWatch,
    };
    (w as { watch: LinkWatch }).watch = watchLinkDeletions({
      command: [ipTool(), '-n', ns.name, '-o', 'monitor', 'link'],
      onDeleted: (link) => w.deleted.push(link),
      onRestart: () => (w.restarts += 1),
      isGone: (link) => ns.exec(['/usr/bin/cat', `/sys/class/net/${link.name}/ifindex`]).stdout.trim() !== String(link.ifindex),
    });
    try {
      await untilWatching(w);
      await fn(w);
    } finally {
      w.watch.stop();
      ns.destroy();
    }
  };
}

/** Pids of this process's children running `ip ... monitor link` for `ns`. */
function monitorPids(ns: Netns): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (ppid === process.pid && cmdline.includes(ns.name) && cmdline.includes('monitor')) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test.before(() => {
  sweepStaleNetns();
});

test('an fd tap that dies with its holder is reported deleted within 2 s, by ifindex and name', withWatch(async (w) => {
  const child = w.ns.spawn([process.execPath, TAP_WORKER, JSON.stringify({ name: 'xkvmfdw0', queues: 2, uid: 4301 })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await within(lines.next(), PATIENCE_MS, 'the tap worker');
  assert.ok(first.done !== true && !String(first.value).includes('error'), String(first.value));
  const ifindex = ifindexOf(w.ns, 'xkvmfdw0');
  w.ns.ip('link', 'set', 'xkvmfdw0', 'master', 'br0');
  const killed = Date.now();
  child.kill('SIGKILL');
  await waitFor(() => w.deleted.some((d) => d.ifindex === ifindex), CONTRACT_MS, { what: 'the deletion to be reported', since: killed });
  assert.equal(w.deleted.filter((d) => d.ifindex === ifindex), [{ ifindex, name: 'xkvmfdw0' }]);
}));

test('links deleted by ip are reported in order; new and changed links are not', withWatch(async (w) => {
  w.ns.ip('tuntap', 'add', 'dev', 'xkvmnamed0', 'mode', 'tap');
  w.ns.ip('tuntap', 'add', 'dev', 'xkvmnamed1', 'mode', 'tap');
  const [a, b] = [ifindexOf(w.ns, 'xkvmnamed0'), ifindexOf(w.ns, 'xkvmnamed1')];
  w.ns.ip('link', 'set', 'xkvmnamed0', 'up');
  w.ns.ip('link', 'del', 'xkvmnamed1');
  w.ns.ip('link', 'del', 'xkvmnamed0');
  await waitFor(() => w.deleted.length >= 2, PATIENCE_MS, { what: 'both deletions' });
  assert.equal(w.deleted, [{ ifindex: b, name: 'xkvmnamed1' }, { ifindex: a, name: 'xkvmnamed0' }]);
}));

test('a tap that only leaves its bridge is not reported, though ip prints "Deleted" for it', withWatch(async (w) => {
  w.ns.ip('tuntap', 'add', 'dev', 'xkvmport', 'mode', 'tap');
  w.ns.ip('link', 'set', 'xkvmport', 'master', 'br0');
  w.ns.ip('link', 'set', 'xkvmport', 'nomaster');
  w.ns.ip('tuntap', 'add', 'dev', 'xkvmmark', 'mode', 'tap');
  w.ns.ip('link', 'del', 'xkvmmark');
  await waitFor(() => w.deleted.some((d) => d.name === 'xkvmmark'), PATIENCE_MS, { what: 'the deletion after it' });
  assert.equal(w.deleted.map((d) => d.name), ['xkvmmark']);
}));

test('a watcher whose ip was killed starts it again, says so, and reports later deletions', withWatch(async (w) => {
  const [pid] = monitorPids(w.ns);
  assert.ok(pid !== undefined, 'the watcher runs ip monitor');
  process.kill(pid, 'SIGKILL');
  await waitFor(() => w.restarts === 1, PATIENCE_MS, { what: 'the restart' });
  await untilWatching(w);
  w.ns.ip('tuntap', 'add', 'dev', 'xkvmafter', 'mode', 'tap');
  const ifindex = ifindexOf(w.ns, 'xkvmafter');
  w.ns.ip('link', 'del', 'xkvmafter');
  await waitFor(() => w.deleted.some((d) => d.ifindex === ifindex), PATIENCE_MS, { what: 'the later deletion' });
  assert.is(monitorPids(w.ns).length, 1, 'one ip monitor, not two');
}));

test('a stopped watcher leaves no ip behind and reports nothing more', withWatch(async (w) => {
  w.watch.stop();
  await waitFor(() => monitorPids(w.ns).length === 0, PATIENCE_MS, { what: 'ip monitor to end' });
  w.ns.ip('tuntap', 'add', 'dev', 'xkvmquiet', 'mode', 'tap');
  w.ns.ip('link', 'del', 'xkvmquiet');
  assert.equal(w.deleted, []);
}));

test('with the default command, a watcher\'s ip dies with its process when that is SIGKILLed, even in a namespace where no link changes', async () => {
  requireRoot();
  const ns = createNetns({ bridges: [] });
  try {
    const module = new URL('../../../helper/src/net/linkwatch.js', import.meta.url).href;
    const owner = ns.spawn([process.execPath, '--input-type=module', '-e',
      `const { watchLinkDeletions } = await import(${JSON.stringify(module)}); watchLinkDeletions({ onDeleted() {} }); console.log('watching'); setInterval(() => {}, 1000);`],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = createInterface({ input: owner.stdout! });
    await within(new Promise<void>((resolve) => ready.once('line', () => resolve())), PATIENCE_MS, 'the watcher to start');
    const child = (): number | undefined => {
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          if (ppid === owner.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes('monitor')) return Number(entry);
        } catch {
          // gone meanwhile
        }
      }
      return undefined;
    };
    const { value: ip } = await waitFor(child, PATIENCE_MS, { what: 'its ip monitor' });
    assert.equal(readFileSync(`/proc/${ip}/cmdline`, 'utf8').split('\0').filter((a) => a !== ''), [ipTool(), '-o', 'monitor', 'link'], 'setpriv exec\'d ip');
    owner.kill('SIGKILL');
    await waitFor(() => {
      try {
        const stat = readFileSync(`/proc/${ip}/stat`, 'utf8');
        return /^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '');
      } catch {
        return true;
      }
    }, PATIENCE_MS, { what: 'ip monitor to die with its owner' });
  } finally {
    ns.destroy();
  }
});

test.run();
