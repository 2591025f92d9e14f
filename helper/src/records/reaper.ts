/**
 * Crash safety (docs/protocol.md, invariant 4). At start, every session record whose helper is gone is looked at:
 * if its client is gone too, its taps are removed now; if its client still runs, its taps are
 * kept (qemu uses them) and, when `adopt` is set, watched: they are removed within a poll
 * interval of the client's end. Processes are compared by pid AND start time. Taps are removed
 * by what the ledger recorded (records/ledger.ts, records/removal.ts), whoever owns them now.
 *
 * Then the ledger: taps no request ever got (orphans) are removed. They are the intents a dead
 * helper left (resolved under their uid's lock, when it can be taken at once), orphan entries
 * still there, and session taps whose helper is gone and whose session has no record (a helper
 * that died between completing its ledger and writing the record).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { processStartTime } from '../identity/process-start.js';
import type { AuditLog } from '../audit/audit.js';
import type { NetOps } from '../requests/net-ops.js';
import type { Ledger, LedgerEntry } from './ledger.js';
import { entryTargets, removeTargets, targetsFrom } from './removal.js';
import type { ProcessRef, SessionRecord, SessionStore } from './store.js';

const POLL_MS = 500;

function isAlive(ref: ProcessRef): boolean {
  const start = processStartTime(ref.pid);
  return start !== undefined && start.toString() === ref.start;
}

export interface ReaperDeps {
  store: SessionStore;
  ledger: Ledger;
  net: NetOps;
  audit: AuditLog;
  self: ProcessRef;
  ovsdbOption: () => { ovsdb?: string };
  /** Fd taps on Open vSwitch found gone while settling a ledger: their ports are to be removed (records/fdtaps.ts). */
  onVanished?: (entries: readonly LedgerEntry[]) => void;
}

export class Reaper {
  readonly #d: ReaperDeps;
  readonly #adopted = new Map<string, SessionRecord>();
  #timer: NodeJS.Timeout | undefined;
  /** Called whenever the adopted set becomes empty. */
  onIdle: () => void = () => {};

  constructor(deps: ReaperDeps) {
    this.#d = deps;
  }

  get adopted(): number {
    return this.#adopted.size;
  }

  #ours(ref: ProcessRef): boolean {
    return ref.pid === this.#d.self.pid && ref.start === this.#d.self.start;
  }

  async #remove(record: SessionRecord, why: string): Promise<void> {
    try {
      const targets = targetsFrom(record.nics, this.#d.ledger.read(record.uid));
      const removal = await removeTargets(this.#d.net, targets, this.#d.ovsdbOption());
      if (removal.problem !== undefined) {
        // The record stays: the next helper to start tries again.
        this.#d.audit.write({ event: 'session-reaped', session: record.id, uid: record.uid, why, result: 'error', message: removal.problem, taps: record.nics, left: removal.failed });
        return;
      }
      this.#d.store.remove(record.id);
      this.#d.audit.write({ event: 'session-reaped', session: record.id, uid: record.uid, why, result: 'ok', taps: record.nics });
    } catch (error) {
      this.#d.audit.write({ event: 'session-reaped', session: record.id, uid: record.uid, why, result: 'error', message: (error as Error).message });
    }
  }

  /** Look at every orphaned record, then the ledger, once; returns how many sessions were removed and kept. */
  async sweep(adopt: boolean): Promise<{ removed: number; kept: number }> {
    let removed = 0;
    let kept = 0;
    const records = this.#d.store.list((file, problem) => this.#d.audit.write({ event: 'session-record', result: 'unreadable', file, message: problem }));
    // Removed together, so that their deletions share one group (net/groupdelete.ts).
    const removals: Promise<void>[] = [];
    for (const record of records) {
      if (this.#adopted.has(record.id)) continue;
      if (this.#ours(record.helper) || isAlive(record.helper)) continue;
      if (!isAlive(record.client)) {
        removals.push(this.#remove(record, 'the client ended while no helper served it'));
        removed += 1;
      } else {
        kept += 1;
        if (adopt) {
          this.#adopted.set(record.id, record);
          this.#d.store.write({ ...record, helper: this.#d.self });
          this.#d.audit.write({ event: 'session-adopted', session: record.id, uid: record.uid, client: record.client, taps: record.nics });
        }
      }
    }
    await Promise.all(removals);
    await this.#sweepLedger();
    if (this.#adopted.size > 0) this.#watch();
    return { removed, kept };
  }

  /** Removes the orphans of every uid's ledger (see the top of this file). */
  async #sweepLedger(): Promise<void> {
    const { ledger, net } = this.#d;
    for (const uid of ledger.uids()) {
      let found: LedgerEntry[] = [];
      let entries: readonly LedgerEntry[];
      const release = ledger.tryLock(uid);
      if (release === undefined) {
        // A helper is making this uid's taps: its intents are its own.
        entries = ledger.read(uid).filter((e) => e.ifindex !== undefined);
      } else {
        try {
          const book = ledger.open(uid);
          const vanished: LedgerEntry[] = [];
          found = book.settle(net, vanished);
          book.save();
          if (vanished.length > 0) this.#d.onVanished?.(vanished);
          entries = book.entries;
        } catch (error) {
          this.#d.audit.write({ event: 'ledger', uid, result: 'error', message: `cannot settle the ledger: ${(error as Error).message}` });
          continue;
        } finally {
          release();
        }
      }
      const orphans = [...found, ...entries.filter((e) => !found.includes(e) && net.ifindex(e.tap) === e.ifindex && this.#orphaned(e))];
      if (orphans.length === 0) continue;
      const nics = orphans.map((o) => ({ bridge: o.bridge, tap: o.tap, type: o.type }));
      const removal = await removeTargets(net, entryTargets(orphans), this.#d.ovsdbOption());
      this.#d.audit.write({
        event: 'orphans-removed', uid, why: 'made for a request that never got its reply', taps: nics,
        ...(removal.problem === undefined ? { result: 'ok' } : { result: 'error', message: removal.problem, left: removal.failed }),
      });
    }
  }

  /** An entry whose request never got its reply, or whose session no helper will ever end. */
  #orphaned(e: LedgerEntry): boolean {
    if (e.orphan === true) return true;
    if (e.lifetime !== 'session' || e.session === undefined) return false;
    // A record of any kind (even one that cannot be read) keeps its taps to the record's rules.
    if (existsSync(join(this.#d.store.dir, `${e.session}.json`))) return false;
    return !this.#ours(e.helper) && !isAlive(e.helper);
  }

  #watch(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.#poll(), POLL_MS);
  }

  async #poll(): Promise<void> {
    const ended = [...this.#adopted].filter(([, record]) => !isAlive(record.client));
    for (const [id] of ended) this.#adopted.delete(id);
    await Promise.all(ended.map(([, record]) => this.#remove(record, 'the client ended')));
    if (this.#adopted.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.onIdle();
    }
  }
}
