/**
 * MAC lock on a Linux bridge (policy `mac-lock`): the tap's bridge port is locked
 * (`bridge link set dev TAP locked on`, kernel 5.18 or later) and given one static FDB entry
 * (`bridge fdb add MAC dev TAP master static`). A locked port lets a frame in only when its
 * source MAC has an FDB entry pointing at that port, so frames from the tap with any other
 * source are dropped by the bridge before forwarding or learning. Both vanish with the tap (the
 * kernel flushes a port's FDB entries and flags when it leaves the bridge), so deleting the tap
 * is the whole clean-up. The tap's owner cannot undo it: changing a bridge port needs
 * CAP_NET_ADMIN.
 *
 * `fdb add`, never `replace`: a MAC the bridge already knows on another port (a router's, another
 * guest's, the bridge's own) is refused (the kernel says EEXIST), so a lock never moves a MAC's
 * entry, and the traffic to it, to the locked tap.
 *
 * All the taps of a batch are locked by ONE `bridge -json -details -force -batch -`, which then
 * reads back each bridge's FDB and every port's flags in the same run: a tap is locked only
 * when the kernel shows it `locked` with its static entry (an older kernel ignores the
 * attribute it does not know, and must not hand out a tap it did not lock).
 */
import { NetError } from './errors.js';
import { errorText, type Runner } from './runner.js';
import { bridgeTool, IP_TIMEOUT_MS } from './tools.js';

/** A tap on a Linux bridge, to be locked to one source MAC (checked by the caller). */
export interface PortLock {
  readonly bridge: string;
  readonly tap: string;
  readonly mac: string;
}

/** What the read-back shows: the ports that are locked, `TAP MAC` of the static master entries, the port of each MAC. */
interface Seen {
  readonly locked: Set<string>;
  readonly entries: Set<string>;
  readonly ports: Map<string, string>;
}

function readBack(stdout: string): Seen {
  const seen: Seen = { locked: new Set(), entries: new Set(), ports: new Map() };
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('[')) continue;
    let rows: unknown;
    try {
      rows = JSON.parse(line);
    } catch {
      continue;
    }
    if (!Array.isArray(rows)) continue;
    for (const row of rows as Array<Record<string, unknown>>) {
      if (typeof row !== 'object' || row === null || typeof row['ifname'] !== 'string') continue;
      const ifname = row['ifname'];
      if (row['locked'] === true) seen.locked.add(ifname);
      const flags = row['flags'];
      if (typeof row['mac'] === 'string' && !(Array.isArray(flags) && flags.includes('self'))) seen.ports.set(row['mac'], ifname);
      if (typeof row['mac'] === 'string' && row['state'] === 'static' && typeof row['master'] === 'string'
        && !(Array.isArray(flags) && flags.includes('self'))) {
        seen.entries.add(`${ifname} ${row['mac']}`);
      }
    }
  }
  return seen;
}

/** Why a tap is not locked, and whether that is its request's MAC being in use already. */
export interface LockFailure {
  readonly why: string;
  readonly inUse: boolean;
}

/**
 * Locks each tap to its MAC; returns the taps that are NOT locked afterwards, each with why
 * (empty: all locked). Throws SYSTEM_ERROR only when bridge(8) could not be run at all.
 */
export async function lockLinuxPorts(run: Runner, locks: readonly PortLock[]): Promise<Map<string, LockFailure>> {
  const failed = new Map<string, LockFailure>();
  if (locks.length === 0) return failed;
  const lines = locks.flatMap(({ tap, mac }) => [`link set dev ${tap} locked on`, `fdb add ${mac} dev ${tap} master static`]);
  for (const bridge of new Set(locks.map((l) => l.bridge))) lines.push(`fdb show br ${bridge}`);
  lines.push('link show');
  const r = await run({ file: bridgeTool(), args: ['-json', '-details', '-force', '-batch', '-'], input: `${lines.join('\n')}\n`, timeoutMs: IP_TIMEOUT_MS });
  const seen = readBack(r.stdout);
  for (const { bridge, tap, mac } of locks) {
    const holder = seen.ports.get(mac);
    if (holder !== undefined && holder !== tap) {
      failed.set(tap, { why: `${mac} is in use on ${bridge} already (on ${holder}), so it cannot be locked to ${tap}`, inUse: true });
      continue;
    }
    const missing = [...(seen.locked.has(tap) ? [] : ['not locked']), ...(seen.entries.has(`${tap} ${mac}`) ? [] : [`no static entry for ${mac}`])];
    if (missing.length > 0) {
      failed.set(tap, { why: `could not lock the bridge port of ${tap}: ${missing.join(', ')} (bridge: ${r.exitCode === 0 ? 'no error' : errorText(r.stderr)}); port locking needs Linux 5.18 or later`, inUse: false });
    }
  }
  return failed;
}

/**
 * A NetError for a request whose taps could not all be locked: BAD_REQUEST when its MAC is in use
 * on the bridge (the request's to change), SYSTEM_ERROR otherwise.
 */
export function lockError(failed: ReadonlyMap<string, LockFailure>, taps: readonly string[]): NetError {
  const mine = taps.flatMap((t) => failed.get(t) ?? []);
  return new NetError(mine.some((f) => f.inUse) ? 'BAD_REQUEST' : 'SYSTEM_ERROR', `mac-lock: ${mine.map((f) => f.why).join('; ')}`);
}
