/**
 * Crash safety (docs/protocol.md, invariant 4). At start, every session record whose helper is gone is looked at:
 * if its client is gone too, its taps are removed now; if its client still runs, its taps are
 * kept (qemu uses them) and, when `adopt` is set, watched: they are removed within a poll
 * interval of the client's end. Processes are compared by pid AND start time.
 */
import { processStartTime } from '../identity/process-start.js';
import type { AuditLog } from '../audit/audit.js';
import type { NetOps } from '../requests/net-ops.js';
import type { ProcessRef, SessionRecord, SessionStore } from './store.js';

const POLL_MS = 500;

function isAlive(ref: ProcessRef): boolean {
  const start = processStartTime(ref.pid);
  return start !== undefined && start.toString() === ref.start;
}

export interface ReaperDeps {
  store: SessionStore;
  net: NetOps;
  audit: AuditLog;
  self: ProcessRef;
  ovsdbOption: () => { ovsdb?: string };
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

  async #remove(record: SessionRecord, why: string): Promise<void> {
    try {
      await this.#d.net.deleteTaps(record.nics, { ...this.#d.ovsdbOption(), owner: record.uid });
      this.#d.store.remove(record.id);
      this.#d.audit.write({ event: 'session-reaped', session: record.id, uid: record.uid, why, result: 'ok', taps: record.nics });
    } catch (error) {
      this.#d.audit.write({ event: 'session-reaped', session: record.id, uid: record.uid, why, result: 'error', message: (error as Error).message });
    }
  }

  /** Look at every orphaned record once; returns how many were removed and kept. */
  async sweep(adopt: boolean): Promise<{ removed: number; kept: number }> {
    let removed = 0;
    let kept = 0;
    const records = this.#d.store.list((file, problem) => this.#d.audit.write({ event: 'session-record', result: 'unreadable', file, message: problem }));
    for (const record of records) {
      if (this.#adopted.has(record.id)) continue;
      const ours = record.helper.pid === this.#d.self.pid && record.helper.start === this.#d.self.start;
      if (ours || isAlive(record.helper)) continue;
      if (!isAlive(record.client)) {
        await this.#remove(record, 'the client ended while no helper served it');
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
    if (this.#adopted.size > 0) this.#watch();
    return { removed, kept };
  }

  #watch(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.#poll(), POLL_MS);
  }

  async #poll(): Promise<void> {
    for (const [id, record] of this.#adopted) {
      if (isAlive(record.client)) continue;
      this.#adopted.delete(id);
      await this.#remove(record, 'the client ended');
    }
    if (this.#adopted.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.onIdle();
    }
  }
}
