/**
 * Taps handed over as file descriptors (lifetime "fd" in the ledger, issue 11) after they are
 * handed over: such a tap dies with the last holder of its fds (qemu), not with a connection, and
 * the helper does not see it die. Two things must follow its death: the ledger forgets it (it no
 * longer counts for max-taps), and, on Open vSwitch, its port goes (OVS keeps a port record after
 * the device is gone), with its mac-lock flows.
 *
 * How: while this process knows fd taps that exist, a link watcher runs (net/linkwatch.ts, one
 * long-lived `ip -o monitor link`); a deletion of a watched ifindex, or a check that finds the
 * device gone (when the watcher starts or restarts, and a second later: deletions before ip's
 * netlink subscription are not reported), forgets it under its user's lock and removes its port.
 * The watcher stops when no fd tap is left, and never keeps the helper alive (an idle
 * socket-activated helper still exits while qemu holds fd taps). An fd tap that dies while no
 * helper runs is found by the next one: at start (`sweep`), and by any helper settling that
 * user's ledger (Book.settle's `vanished`, passed to `removePorts`).
 */
import type { AuditLog } from '../audit/audit.js';
import { watchLinkDeletions, type LinkWatch, type LinkWatchOptions } from '../net/linkwatch.js';
import type { NetOps } from '../requests/net-ops.js';
import type { Ledger, LedgerEntry } from './ledger.js';
import { entryTargets, removeTargets } from './removal.js';

export interface FdTapsDeps {
  ledger: Ledger;
  net: NetOps;
  audit: AuditLog;
  ovsdbOption: () => { ovsdb?: string };
  log: (message: string) => void;
  /** Orphans found while settling a ledger (taps whose request never got its reply): to remove. */
  onOrphans: (orphans: readonly LedgerEntry[]) => void;
  /**
   * Starts the link watcher (default: watchLinkDeletions).
   * @internal Tests watch another namespace.
   */
  watch?: (options: LinkWatchOptions) => LinkWatch;
}

/** A check after the watcher (re)starts, then this much later (ip's subscription window). */
const SECOND_CHECK_MS = 1000;
/** A user's lock held elsewhere: try again after 20 ms, doubling up to 500 ms, for 10 s. */
const LOCK_RETRY_MS = 20;
const LOCK_RETRY_MAX_MS = 500;
const LOCK_WAIT_MS = 10_000;

export class FdTaps {
  readonly #d: FdTapsDeps;
  /** The fd taps known to exist, by ifindex. */
  readonly #taps = new Map<number, LedgerEntry>();
  #watch: LinkWatch | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Forgetting in progress (tests and shutdown wait for it). */
  #busy: Promise<void> = Promise.resolve();

  constructor(deps: FdTapsDeps) {
    this.#d = deps;
  }

  /** How many fd taps this process watches. */
  get watched(): number {
    return this.#taps.size;
  }

  /** Whether the link watcher runs. */
  get watching(): boolean {
    return this.#watch !== undefined;
  }

  /** Watch these fd taps (completed ledger entries) from now on. */
  add(entries: readonly LedgerEntry[]): void {
    for (const e of entries) if (e.ifindex !== undefined && e.lifetime === 'fd') this.#taps.set(e.ifindex, e);
    if (this.#taps.size === 0) return;
    if (this.#watch === undefined) {
      const watch = this.#d.watch ?? watchLinkDeletions;
      this.#watch = watch({
        onDeleted: (link) => {
          const e = this.#taps.get(link.ifindex);
          if (e !== undefined) this.#gone([e]);
        },
        onRestart: () => this.#checkTwice(),
        onExit: (detail) => this.#d.log(`the link watcher: ${JSON.stringify(detail)}`),
      });
      this.#checkTwice();
    } else {
      // Closed before the watcher could see it (e.g. the reply could not be sent).
      this.check();
    }
  }

  /** Forgets every watched fd tap whose device is gone. */
  check(): void {
    const gone = [...this.#taps.values()].filter((e) => this.#d.net.ifindex(e.tap) !== e.ifindex);
    if (gone.length > 0) this.#gone(gone);
  }

  #checkTwice(): void {
    this.check();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.check();
    }, SECOND_CHECK_MS);
    this.#timer.unref();
  }

  /** Settles: resolves when what is being forgotten now is forgotten. */
  settled(): Promise<void> {
    return this.#busy;
  }

  /**
   * At start: every user's fd taps in the ledger; those gone are forgotten (and their ports
   * removed), those that exist are watched if `watchAlive` (the socket helper; a pkexec helper,
   * short-lived, leaves them to whoever runs when they die).
   */
  async sweep(watchAlive: boolean): Promise<void> {
    const alive: LedgerEntry[] = [];
    const gone: LedgerEntry[] = [];
    for (const uid of this.#d.ledger.uids()) {
      for (const e of this.#d.ledger.read(uid)) {
        if (e.lifetime !== 'fd' || e.ifindex === undefined) continue;
        (this.#d.net.ifindex(e.tap) === e.ifindex ? alive : gone).push(e);
      }
    }
    if (watchAlive) this.add(alive);
    for (const uid of new Set(gone.map((e) => e.uid))) await this.#forget(uid, gone.filter((e) => e.uid === uid));
  }

  /** Ports of fd taps found gone by someone else's settle: removed, audited. */
  async removePorts(vanished: readonly LedgerEntry[]): Promise<void> {
    for (const e of vanished) if (e.ifindex !== undefined) this.#taps.delete(e.ifindex);
    this.#stopIfNone();
    for (const uid of new Set(vanished.map((e) => e.uid))) await this.#removePorts(uid, vanished.filter((e) => e.uid === uid), []);
  }

  /** Ends the watch (the helper exits). */
  stop(): void {
    this.#taps.clear();
    this.#stopIfNone();
  }

  #stopIfNone(): void {
    if (this.#taps.size > 0) return;
    this.#watch?.stop();
    this.#watch = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #gone(entries: readonly LedgerEntry[]): void {
    for (const e of entries) if (e.ifindex !== undefined) this.#taps.delete(e.ifindex);
    this.#stopIfNone();
    const work = async (): Promise<void> => {
      for (const uid of new Set(entries.map((e) => e.uid))) await this.#forget(uid, entries.filter((e) => e.uid === uid));
    };
    const run = this.#busy.then(work);
    this.#busy = run.catch((error: unknown) => this.#d.log(`cannot forget fd taps: ${(error as Error).message}`));
  }

  /**
   * Under the uid's lock: the ledger settled (the gone taps dropped), then the OVS ports of the
   * gone taps (and of any other fd taps on OVS the settle found gone) removed, and audited.
   */
  async #forget(uid: number, gone: readonly LedgerEntry[]): Promise<void> {
    const { ledger, net } = this.#d;
    const release = await this.#lock(uid);
    const vanished: LedgerEntry[] = [];
    if (release === undefined) {
      this.#d.audit.write({ event: 'fd-tap-gone', uid, result: 'error', taps: gone.map(nicOf), message: `the lock on uid ${uid}'s taps (${ledger.lockFile(uid)}) stayed held elsewhere; whoever settles that ledger next forgets them` });
      return;
    }
    try {
      const book = ledger.open(uid);
      const orphans = book.settle(net, vanished);
      book.save();
      if (orphans.length > 0) this.#d.onOrphans(orphans);
    } catch (error) {
      this.#d.audit.write({ event: 'ledger', uid, result: 'error', message: `cannot settle the ledger: ${(error as Error).message}` });
    } finally {
      release();
    }
    await this.#removePorts(uid, vanished, gone);
  }

  /** Removes the OVS ports of `vanished` (and audits `gone` with them). */
  async #removePorts(uid: number, vanished: readonly LedgerEntry[], gone: readonly LedgerEntry[]): Promise<void> {
    const all = new Map<string, LedgerEntry>();
    for (const e of [...gone, ...vanished]) all.set(e.tap, e);
    const entries = [...all.values()];
    if (entries.length === 0) return;
    const ports = entries.filter((e) => e.type === 'ovs');
    const removal = ports.length === 0 ? undefined : await removeTargets(this.#d.net, entryTargets(ports), this.#d.ovsdbOption());
    this.#d.audit.write({
      event: 'fd-tap-gone', uid, why: 'its last fd was closed', taps: entries.map(nicOf),
      ...(removal?.problem === undefined ? { result: 'ok' } : { result: 'error', message: removal.problem, left: removal.failed }),
    });
  }

  async #lock(uid: number): Promise<(() => void) | undefined> {
    const since = Date.now();
    for (let pause = LOCK_RETRY_MS; ; pause = Math.min(pause * 2, LOCK_RETRY_MAX_MS)) {
      const release = this.#d.ledger.tryLock(uid);
      if (release !== undefined || Date.now() - since >= LOCK_WAIT_MS) return release;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

function nicOf(e: LedgerEntry): { bridge: string; tap: string; type: 'brctl' | 'ovs' } {
  return { bridge: e.bridge, tap: e.tap, type: e.type };
}
