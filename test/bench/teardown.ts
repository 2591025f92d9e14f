/**
 * Teardown at scale: 16 clients holding 20 session taps each (320) close their connections
 * together; the figure is the time from the last close until the helper has deleted every tap
 * (its 16 session-end records, each written once its session's taps are gone; checked in the
 * namespace afterwards). The baseline, in the same run: the same 320 taps deleted one `link del`
 * at a time in one `ip -batch` (how the helper deleted before), each paying an RCU grace period.
 */
import { openConnection, type HelperConnection } from '../../client/src/helper/connection.js';
import type { Netns } from '../support/netns.js';
import { startHelper, type HelperProcess } from '../support/helper-process.js';
import { summarise, type Timing } from './measure.js';

const CLIENTS = 16;
const TAPS_EACH = 20;

export interface TeardownFigures {
  ours: Timing;
  oneByOne: Timing;
}

async function makeSessions(location: Parameters<typeof openConnection>[0]): Promise<{ connections: HelperConnection[]; taps: string[] }> {
  const connections = await Promise.all(Array.from({ length: CLIENTS }, () => openConnection(location)));
  const replies = await Promise.all(connections.map((c) => c.request({
    v: 1, op: 'make-nics', bridges: Array.from({ length: TAPS_EACH }, () => 'br0'), lifetime: 'session',
  })));
  const taps: string[] = [];
  for (const reply of replies) {
    if (!reply.ok || !('nics' in reply)) throw new Error(`make-nics failed: ${JSON.stringify(reply)}`);
    taps.push(...reply.nics.map((n) => n.tap));
  }
  return { connections, taps };
}

/** Milliseconds from the last close until `sessions` session-end records after `mark` are in. */
async function untilEnded(helper: HelperProcess, mark: number, sessions: number, start: bigint): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ends = helper.auditSince(mark).filter((r) => r.event === 'session-end');
    if (ends.length >= sessions) {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const failed = ends.filter((r) => r['result'] !== 'ok');
      if (failed.length > 0) throw new Error(`sessions ended with errors: ${JSON.stringify(failed)}`);
      return ms;
    }
    if (Date.now() > deadline) throw new Error(`only ${ends.length} of ${sessions} sessions ended within 60 s`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function present(ns: Netns, taps: readonly string[]): string[] {
  const names = new Set((JSON.parse(ns.ip('-j', 'link', 'show')) as { ifname: string }[]).map((d) => d.ifname));
  return taps.filter((t) => names.has(t));
}

export async function benchTeardown(ns: Netns, rounds: number, baselineRounds: number): Promise<TeardownFigures> {
  const ours: number[] = [];
  const helper = await startHelper(ns, { policy: `allow br0 root\nmax-taps ${CLIENTS * TAPS_EACH}\n`, stateOnTmpfs: true });
  try {
    const location = { kind: 'socket' as const, path: helper.socket, from: 'XKVM_HELPER_SOCKET' as const };
    for (let round = -1; round < rounds; round++) {
      const { connections, taps } = await makeSessions(location);
      const mark = helper.auditMark();
      for (const c of connections) c.close();
      const ms = await untilEnded(helper, mark, CLIENTS, process.hrtime.bigint());
      const left = present(ns, taps);
      if (left.length > 0) throw new Error(`taps left after their sessions ended: ${left.join(' ')}`);
      if (round >= 0) ours.push(ms);
    }
  } finally {
    await helper.stop();
  }

  const oneByOne: number[] = [];
  for (let round = 0; round < baselineRounds; round++) {
    const taps = Array.from({ length: CLIENTS * TAPS_EACH }, (_, i) => `benchtd${i}`);
    const made = ns.exec(['/usr/sbin/ip', '-batch', '-'], {
      input: taps.map((t) => `tuntap add dev ${t} mode tap user 0\nlink set dev ${t} up master br0\n`).join(''),
    });
    if (made.status !== 0) throw new Error(`making the baseline taps failed: ${made.stderr}`);
    const start = process.hrtime.bigint();
    const deleted = ns.exec(['/usr/sbin/ip', '-batch', '-'], { input: taps.map((t) => `link del dev ${t}\n`).join('') });
    oneByOne.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (deleted.status !== 0) throw new Error(`deleting the baseline taps failed: ${deleted.stderr}`);
  }
  return {
    ours: summarise(`xkvm-helper, ${CLIENTS} clients × ${TAPS_EACH} session taps closing together`, ours),
    oneByOne: summarise(`the same ${CLIENTS * TAPS_EACH} taps, one link del each (ip -batch)`, oneByOne),
  };
}
