// The watch over fd taps (records/fdtaps.ts) with a stand-in host and link watcher and a real
// ledger in a temporary directory: a reported deletion forgets the tap under its user's lock and
// removes an OVS port; a restart of the watcher reconciles what it may have missed; a user's lock
// held elsewhere is waited for; the watcher runs only while there are fd taps; at start, fd taps
// gone meanwhile are forgotten with their ports. (Real taps, OVS and ip: test/helper/server/fd-handoff.test.ts.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../../support/suite.js';
import * as assert from 'uvu/assert';
import type { LinkWatchOptions } from '../../../helper/src/net/linkwatch.js';
import { FdTaps } from '../../../helper/src/records/fdtaps.js';
import { Ledger, type LedgerEntry } from '../../../helper/src/records/ledger.js';
import { MemoryAudit, MemoryLocks, StandInHost } from '../requests/stand-ins.js';

const dir = mkdtempSync(join(tmpdir(), 'xkvm-fdtaps-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const UID = 4201;
const HELPER = { pid: process.pid, start: '1' };

interface Rig {
  fdTaps: FdTaps;
  host: StandInHost;
  ledger: Ledger;
  locks: MemoryLocks;
  audit: MemoryAudit;
  /** The watcher's callbacks while it runs; undefined when stopped. */
  watcher(): LinkWatchOptions | undefined;
  starts: number;
}

function rig(): Rig {
  const host = new StandInHost();
  const locks = new MemoryLocks();
  const ledger = new Ledger(mkdtempSync(join(dir, 'state-')), { lock: locks.lock });
  const audit = new MemoryAudit();
  let current: LinkWatchOptions | undefined;
  const r: Rig = {
    host, ledger, locks, audit, starts: 0,
    watcher: () => current,
    fdTaps: new FdTaps({
      ledger, net: host, audit, log: () => undefined, ovsdbOption: () => ({}), onOrphans: () => undefined,
      watch: (options) => {
        r.starts += 1;
        current = options;
        return { stop: () => { current = undefined; } };
      },
    }),
  };
  return r;
}

/** An fd tap the host has and the ledger records. */
function made(r: Rig, tap: string, type: 'brctl' | 'ovs'): LedgerEntry {
  const ifindex = r.host.add(tap, UID);
  const entry: LedgerEntry = { tap, bridge: type === 'ovs' ? 'ovsbr0' : 'br0', type, ifindex, uid: UID, lifetime: 'fd', helper: HELPER, time: new Date().toISOString() };
  r.ledger.write(UID, [...r.ledger.read(UID), entry]);
  return entry;
}

async function until(condition: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('a reported deletion forgets the tap in the ledger and removes its OVS port; the watcher stops when no fd tap is left', async () => {
  const r = rig();
  const linux = made(r, 'xkvmfdl', 'brctl');
  const ovs = made(r, 'xkvmfdo', 'ovs');
  r.fdTaps.add([linux, ovs]);
  assert.is(r.starts, 1);
  r.host.devices.delete('xkvmfdo');
  r.watcher()?.onDeleted({ ifindex: ovs.ifindex!, name: 'xkvmfdo' });
  await r.fdTaps.settled();
  assert.equal(r.ledger.read(UID).map((e) => e.tap), ['xkvmfdl'], 'forgotten');
  assert.ok(r.host.events.includes('delete xkvmfdo'), `its port removed: ${r.host.events.join(', ')}`);
  assert.equal(r.audit.records.filter((a) => a['event'] === 'fd-tap-gone').map((a) => [a['result'], (a['taps'] as { tap: string }[]).map((t) => t.tap)]), [['ok', ['xkvmfdo']]]);
  assert.ok(r.fdTaps.watching, 'one left: still watching');
  r.host.devices.delete('xkvmfdl');
  r.watcher()?.onDeleted({ ifindex: linux.ifindex!, name: 'xkvmfdl' });
  await r.fdTaps.settled();
  assert.equal(r.ledger.read(UID), []);
  assert.not.ok(r.host.events.includes('delete xkvmfdl'), 'a Linux bridge port goes with its tap: nothing to remove');
  assert.not.ok(r.fdTaps.watching, 'none left: the watcher stopped');
});

test('after the watcher restarts, a tap deleted while it was down is forgotten (and one that lives is not)', async () => {
  const r = rig();
  const a = made(r, 'xkvmfda', 'ovs');
  const b = made(r, 'xkvmfdb', 'ovs');
  r.fdTaps.add([a, b]);
  r.host.devices.delete('xkvmfda');
  r.watcher()?.onRestart?.();
  await r.fdTaps.settled();
  assert.equal(r.ledger.read(UID).map((e) => e.tap), ['xkvmfdb']);
  assert.ok(r.host.events.includes('delete xkvmfda'));
  assert.is(r.fdTaps.watched, 1);
  r.fdTaps.stop();
});

test('a user\'s lock held by another helper is waited for, then the tap is forgotten', async () => {
  const r = rig();
  const a = made(r, 'xkvmfdw', 'brctl');
  r.fdTaps.add([a]);
  const release = r.locks.hold(r.ledger.lockFile(UID));
  r.host.devices.delete('xkvmfdw');
  r.watcher()?.onDeleted({ ifindex: a.ifindex!, name: 'xkvmfdw' });
  await until(() => (r.locks.tries.get(r.ledger.lockFile(UID)) ?? 0) >= 3);
  assert.is(r.ledger.read(UID).length, 1, 'not forgotten without the lock');
  release();
  await r.fdTaps.settled();
  assert.equal(r.ledger.read(UID), []);
});

test('at start, fd taps gone meanwhile are forgotten with their ports; those alive are watched only when asked', async () => {
  const r = rig();
  made(r, 'xkvmfdgone', 'ovs');
  const alive = made(r, 'xkvmfdlive', 'ovs');
  r.host.devices.delete('xkvmfdgone');
  await r.fdTaps.sweep(false);
  assert.equal(r.ledger.read(UID).map((e) => e.tap), ['xkvmfdlive']);
  assert.ok(r.host.events.includes('delete xkvmfdgone'));
  assert.is(r.starts, 0, 'a pkexec helper watches none');
  await r.fdTaps.sweep(true);
  assert.is(r.fdTaps.watched, 1);
  assert.is(r.starts, 1);
  r.host.devices.delete('xkvmfdlive');
  r.watcher()?.onDeleted({ ifindex: alive.ifindex!, name: 'xkvmfdlive' });
  await r.fdTaps.settled();
  assert.equal(r.ledger.read(UID), []);
});

test.run();
