/**
 * `xkvm-helper status`: every tap the helpers made that still exists on this host, from the ledger
 * (who made it, lifetime, since, grants) and the session records (the session's client; taps of
 * records older than the ledger), each checked against /sys now (same name, same interface index).
 * Read only: no lock is taken (files are replaced by rename) and nothing is written or removed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ifindexOf } from '../net/ifindex.js';
import { mtuOf, tapInfo } from '../net/sysfs.js';
import { Ledger } from './ledger.js';
import { SessionStore } from './store.js';

export interface StatusRow {
  readonly tap: string;
  readonly bridge: string;
  readonly type: 'brctl' | 'ovs';
  /** Whose request made it. */
  readonly uid: number;
  readonly lifetime: string;
  /** When it was recorded (ISO 8601); absent for a tap known only from an old session record. */
  readonly since?: string;
  readonly session?: string;
  /** The pid of the session's client. */
  readonly client?: number;
  /** The tap's owner now, when it is not its creator (a tap given away with TUNSETOWNER). */
  readonly owner?: number;
  readonly mtu?: number;
  readonly queues?: number;
  readonly vlan?: number;
  readonly mac?: string;
  /** Made for a request that never got its reply (to be removed). */
  readonly orphan?: true;
}

/** The taps that exist now, oldest first; `onBad` hears of a ledger file or record that cannot be trusted. */
export function collectStatus(stateDir: string, onBad: (file: string, why: string) => void = () => undefined): StatusRow[] {
  if (!existsSync(stateDir)) return [];
  const records = new SessionStore(stateDir).list(onBad);
  const clients = new Map(records.map((r) => [r.id, r.client.pid]));
  const rows: StatusRow[] = [];
  const seen = new Set<string>();
  const now = (tap: string, uid: number): Pick<StatusRow, 'owner' | 'mtu'> => {
    const info = tapInfo(tap);
    const mtu = mtuOf(tap);
    return { ...(info.owner !== undefined && info.owner !== uid ? { owner: info.owner } : {}), ...(mtu === undefined ? {} : { mtu }) };
  };
  if (existsSync(join(stateDir, 'ledger'))) {
    const ledger = new Ledger(stateDir, { onBad });
    for (const uid of ledger.uids()) {
      for (const e of ledger.read(uid)) {
        if (e.ifindex === undefined || ifindexOf(e.tap) !== e.ifindex) continue;
        seen.add(e.tap);
        const client = e.session === undefined ? undefined : clients.get(e.session);
        rows.push({
          tap: e.tap, bridge: e.bridge, type: e.type, uid: e.uid, lifetime: e.lifetime, since: e.time,
          ...(e.session === undefined ? {} : { session: e.session }), ...(client === undefined ? {} : { client }),
          ...now(e.tap, e.uid),
          ...(e.queues === undefined ? {} : { queues: e.queues }), ...(e.vlan === undefined ? {} : { vlan: e.vlan }), ...(e.mac === undefined ? {} : { mac: e.mac }),
          ...(e.orphan === true ? { orphan: true as const } : {}),
        });
      }
    }
  }
  // Records written before the ledger existed name taps it does not: listed as the records say.
  for (const r of records) {
    for (const nic of r.nics) {
      if (seen.has(nic.tap) || !tapInfo(nic.tap).isTap) continue;
      seen.add(nic.tap);
      rows.push({ tap: nic.tap, bridge: nic.bridge, type: nic.type, uid: r.uid, lifetime: 'session', session: r.id, client: r.client.pid, ...now(nic.tap, r.uid) });
    }
  }
  return rows.sort((a, b) => (a.since ?? '').localeCompare(b.since ?? '') || a.tap.localeCompare(b.tap));
}
