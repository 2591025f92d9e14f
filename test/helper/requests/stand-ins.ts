/**
 * Stand-ins for unit tests of the service, the reaper and the connection: an audit log kept in
 * memory, callers, a pretend host behind the NetOps boundary (devices with interface indexes and
 * owners), and locks kept in memory instead of flock.
 */
import { openSync } from 'node:fs';
import { AuditLog, type AuditRecord } from '../../../helper/src/audit/audit.js';
import type { Caller } from '../../../helper/src/identity/caller.js';
import type { Locker } from '../../../helper/src/records/ledger.js';
import type { NetOps, TapOutcome, TapRequest } from '../../../helper/src/requests/net-ops.js';
import { NetError } from '../../../helper/src/net/errors.js';
import type { Nic, Port } from '../../../shared/src/protocol/messages.js';

export class MemoryAudit extends AuditLog {
  readonly records: AuditRecord[] = [];

  override write(record: AuditRecord): void {
    this.records.push(record);
  }
}

/** A caller as identification would give it (this process's pid, a made-up user). */
export function caller(name: string, uid: number): Caller {
  return { uid, gid: uid, pid: process.pid, start: 1n, transport: 'socket', user: { name, uid, gid: uid, groups: [] } };
}

/**
 * Locks in memory, as flock would behave between helper processes: `hold(path)` takes one as
 * "another helper" would (its release is returned).
 */
export class MemoryLocks {
  readonly #held = new Set<string>();
  /** How many times each path was asked for. */
  readonly tries = new Map<string, number>();

  readonly lock: Locker = (path) => {
    this.tries.set(path, (this.tries.get(path) ?? 0) + 1);
    if (this.#held.has(path)) return undefined;
    this.#held.add(path);
    let released = false;
    return () => {
      if (!released) this.#held.delete(path);
      released = true;
    };
  };

  hold(path: string): () => void {
    const release = this.lock(path);
    if (release === undefined) throw new Error(`${path} is already held`);
    return release;
  }
}

export interface Device {
  ifindex: number;
  owner: number | undefined;
  tap: boolean;
}

/**
 * Taps on a pretend host. Creating tells beforeCreate first (as the real layer does, before its
 * ip batch); deleting removes devices by name, whoever owns them.
 */
export class StandInHost implements NetOps {
  readonly devices = new Map<string, Device>();
  /** Sizes of the batches createTaps was given, in order. */
  readonly batches: number[] = [];
  /** Bridges whose taps fail to be made. */
  readonly broken = new Set<string>();
  /** Taps that deleting leaves in place. */
  readonly undeletable = new Set<string>();
  /** What happened, in order: `intent TAP`, `create TAP`, `delete TAP`, `cleanup UID`, `cleanup UID done`. */
  readonly events: string[] = [];
  #ifindex = 100;
  #n = 0;
  #hold: Promise<void> | undefined;
  #removals: Array<() => void> | undefined;
  #crash: string | undefined;

  /** A device made by someone else (or by the helper, the way a crash would leave it). */
  add(name: string, owner: number | undefined, tap = true): number {
    this.#ifindex += 1;
    this.devices.set(name, { ifindex: this.#ifindex, owner, tap });
    return this.#ifindex;
  }

  /** TUNSETOWNER, as the tap's owner may do. */
  giveAway(name: string, uid: number): void {
    const d = this.devices.get(name);
    if (d === undefined) throw new Error(`no ${name}`);
    d.owner = uid;
  }

  /** Makes the next createTaps wait until the returned function is called. */
  holdNextBatch(): () => void {
    let release = (): void => undefined;
    this.#hold = new Promise<void>((resolve) => { release = resolve; });
    return release;
  }

  /** From now on deletions wait until finishRemovals() is called. */
  holdRemovals(): void {
    this.#removals = [];
  }

  finishRemovals(): void {
    const waiting = this.#removals ?? [];
    this.#removals = undefined;
    for (const w of waiting) w();
  }

  /** The next createTaps throws after creating its taps (as a helper killed there would leave them). */
  crashAfterCreating(why: string): void {
    this.#crash = why;
  }

  async createTaps(requests: TapRequest[], opts: Parameters<NetOps['createTaps']>[1]): Promise<TapOutcome[]> {
    this.batches.push(requests.length);
    if (this.#hold !== undefined) {
      const h = this.#hold;
      this.#hold = undefined;
      await h;
    }
    const planned = requests.map(({ bridges }) => bridges.map(() => {
      this.#n += 1;
      return `xkvmtest${this.#n}`;
    }));
    const going = requests.map((r, job) => ({ r, job })).filter(({ r }) => !r.bridges.some((b) => this.broken.has(b)));
    const taps = going.flatMap(({ r, job }) => r.bridges.map((bridge, slot) => ({ job, slot, bridge, kind: 'linux' as const, tap: planned[job]![slot]! })));
    if (taps.length > 0) opts.beforeCreate?.(taps);
    for (const t of taps) this.events.push(`intent ${t.tap}`);
    const outcomes = requests.map((r, job): TapOutcome => {
      if (r.bridges.some((b) => this.broken.has(b))) return { error: new NetError('SYSTEM_ERROR', 'the stand-in could not') };
      const nics = r.bridges.map((bridge, slot) => {
        const vlan = r.vlans?.[slot];
        return { bridge, tap: planned[job]![slot]!, type: 'brctl' as const, ...(vlan === undefined ? {} : { vlan }) };
      });
      for (const n of nics) {
        this.add(n.tap, r.owner.uid);
        this.events.push(`create ${n.tap}`);
      }
      // Fd handoff: one open fd (of /dev/null) a queue stands for the tap's.
      const fds = r.fd === true ? r.bridges.map((_, slot) => Array.from({ length: r.queues?.[slot] ?? 1 }, () => openSync('/dev/null', 'r'))) : undefined;
      return { nics, ifindexes: nics.map((n) => this.devices.get(n.tap)?.ifindex), ...(fds === undefined ? {} : { fds }) };
    });
    if (this.#crash !== undefined) {
      const why = this.#crash;
      this.#crash = undefined;
      throw new Error(why);
    }
    return outcomes;
  }

  async deleteTaps(nics: Nic[]): Promise<void> {
    if (this.#removals !== undefined) await new Promise<void>((resolve) => this.#removals?.push(resolve));
    const stuck: string[] = [];
    for (const nic of nics) {
      this.events.push(`delete ${nic.tap}`);
      if (this.undeletable.has(nic.tap)) stuck.push(nic.tap);
      else this.devices.delete(nic.tap);
    }
    if (stuck.length > 0) throw new NetError('SYSTEM_ERROR', `deleting taps: could not delete ${stuck.join(', ')}`);
  }

  /** Waits for `cleanupGate` if set; records the overlap of one uid's clean-ups. */
  cleanupGate: Promise<void> | undefined;

  async ovsCleanup(_ports: Port[], who: { uid: number }): Promise<{ removed: Port[]; refused: [] }> {
    this.events.push(`cleanup ${who.uid}`);
    await this.cleanupGate;
    this.events.push(`cleanup ${who.uid} done`);
    return { removed: [], refused: [] };
  }

  ifindex(name: string): number | undefined {
    return this.devices.get(name)?.ifindex;
  }

  isTap(name: string): boolean {
    return this.devices.get(name)?.tap === true;
  }

  /** The taps (by name) each uid owns now. */
  owned(uid: number): string[] {
    return [...this.devices].filter(([, d]) => d.tap && d.owner === uid).map(([name]) => name).sort();
  }
}
