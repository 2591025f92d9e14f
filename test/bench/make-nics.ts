/**
 * make-nics round trips through a warm socket helper (the real one, in a network namespace),
 * single client and 16 concurrent sessions, against the reference's `tap-control make-nics`
 * run as root in the same namespace, in the same run. The helper keeps its state on a tmpfs, as
 * /run/xkvm is on every systemd host.
 */
import { spawnSync } from 'node:child_process';
import { openConnection, type HelperConnection } from '../../client/src/helper/connection.js';
import type { Netns } from '../support/netns.js';
import { startHelper, type HelperProcess } from '../support/helper-process.js';
import { summarise, type Timing } from './measure.js';

/**
 * Wait until the helper has finished removing every session so far (its session-end records):
 * a removal holds the kernel's rtnl lock through an RCU grace period (~30 ms a tap), and a
 * creation measured meanwhile would time the previous round's removal instead.
 */
async function quiet(helper: HelperProcess, sessions: number): Promise<void> {
  const end = Date.now() + 20_000;
  while (helper.audit().filter((a) => a.event === 'session-end').length < sessions) {
    if (Date.now() > end) throw new Error(`the helper did not finish removing ${sessions} sessions`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One make-nics of a tap on br0, or (locked) of a tap on br1 under mac-lock. */
async function roundTrip(connection: HelperConnection, locked = false): Promise<number> {
  const start = process.hrtime.bigint();
  const reply = await connection.request(locked
    ? { v: 1, op: 'make-nics', nics: [{ bridge: 'br1', mac: '52:54:00:4c:00:01' }], lifetime: 'session' }
    : { v: 1, op: 'make-nics', bridges: ['br0'], lifetime: 'session' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (!reply.ok) throw new Error(`make-nics failed: ${reply.error.message}`);
  return ms;
}

export interface MakeNicsFigures {
  single: Timing;
  /** The same, of a tap under mac-lock (one bridge(8) run more: helper/src/net/maclock.ts). */
  locked: Timing;
  concurrent: Timing;
  reference: Timing;
  errors: number;
  helperPeakRssMiB: number;
}

export async function benchMakeNics(ns: Netns, reference: string, requests: number): Promise<MakeNicsFigures> {
  // The state directory on a tmpfs, as /run/xkvm is where the helper is installed.
  const helper = await startHelper(ns, { policy: 'allow br0 root\nallow br1 root\nmac-lock br1 root\nmax-taps 64\n', stateOnTmpfs: true });
  try {
    const location = { kind: 'socket' as const, path: helper.socket, from: 'XKVM_HELPER_SOCKET' as const };
    const single: number[] = [];
    const locked: number[] = [];
    let sessions = 0;
    // Alternating, so that both see the same machine.
    for (let i = -3; i < requests; i++) {
      for (const lock of [false, true]) {
        const connection = await openConnection(location);
        const ms = await roundTrip(connection, lock);
        connection.close();
        sessions += 1;
        await quiet(helper, sessions);
        if (i >= 0) (lock ? locked : single).push(ms);
      }
    }
    const concurrent: number[] = [];
    let errors = 0;
    for (let round = 0; round < Math.ceil(requests / 16); round++) {
      const connections = await Promise.all(Array.from({ length: 16 }, () => openConnection(location)));
      const times = await Promise.allSettled(connections.map((c) => roundTrip(c)));
      for (const t of times) {
        if (t.status === 'fulfilled') concurrent.push(t.value);
        else errors += 1;
      }
      for (const c of connections) c.close();
      sessions += connections.length;
      await quiet(helper, sessions);
    }
    const status = spawnSync('/bin/cat', [`/proc/${helper.pid}/status`], { encoding: 'utf8' }).stdout;
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;

    const reference_: number[] = [];
    for (let i = -1; i < Math.min(requests, 15); i++) {
      const start = process.hrtime.bigint();
      const r = ns.exec(['/bin/bash', reference, 'tap-control', 'make-nics', 'br0']);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (r.status !== 0) throw new Error(`reference make-nics failed: ${r.stderr}`);
      const tap = r.stdout.trim().split(':')[0]!;
      ns.ip('tuntap', 'del', 'mode', 'tap', tap);
      if (i >= 0) reference_.push(ms);
    }
    return {
      single: summarise('xkvm-helper make-nics, one client', single),
      locked: summarise('xkvm-helper make-nics under mac-lock, one client', locked),
      concurrent: summarise('xkvm-helper make-nics, 16 concurrent sessions', concurrent),
      reference: summarise('reference tap-control make-nics (root)', reference_),
      errors,
      helperPeakRssMiB: hwm,
    };
  } finally {
    await helper.stop();
  }
}
