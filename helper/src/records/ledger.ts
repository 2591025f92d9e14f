/**
 * The ledger: every tap the helper created, and who asked for it ("who made it counts",
 * docs/protocol.md). A tap's owner can give it away (TUNSETOWNER needs no privilege from the
 * owner), so its current owner says nothing about whose request made it; the ledger does.
 * max-taps counts a creator's entries whose tap still exists; session and reaped taps are
 * deleted by what the ledger recorded, whoever owns them now.
 *
 * On disk, beside the session records: `<state dir>/ledger/<uid>.json` holds the taps that uid's
 * requests made, `<uid>.lock` is the lock every helper process on the host (the socket helper,
 * pkexec helpers) takes, with flock, while it counts, records and makes that uid's taps. One
 * user's lock held by a stopped helper blocks that user alone.
 *
 * An entry: the tap's name and interface index, its bridge and type, the creator's uid, the
 * lifetime (and session id for a session's tap), the helper process that made it, and when. A
 * tap is (name, ifindex): the device of that name with that index. Only root can rename a device
 * or make one, so for a tap the helper made this is the same as "its ifindex still exists"; a
 * device that took the name later has another index and is never taken for ours.
 *
 * Writing happens only under the uid's lock, in this order:
 * 1. intent: an entry without an ifindex for every tap a batch is about to create, written
 *    (synchronously) before the batch goes to ip, and rewritten before a retry with new names;
 * 2. completion: the ifindex ip's batch gave the tap (read from /sys right after it); a request
 *    that failed drops its intents, and taps it made that could not be removed become orphans.
 * Reading needs no lock (files are replaced by rename).
 *
 * Orphans are taps whose request never got its reply: they are counted while they exist and
 * removed by whoever finds them. Intents found under the lock are orphans' traces: a live helper
 * holds the lock from writing its intents to completing them, so whoever holds it sees only
 * intents of a helper that died in between. The rule for such an intent (`settle`): the device
 * named in it is ours if it exists, is a tap, and no completed entry of any uid records its
 * ifindex. Tap names are 40 random bits that only root can create a device under, so a tap with
 * that name that nothing else claims was made by the dead helper; its owner is not looked at (it
 * may have been given away in the meantime).
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import type { Lifetime } from '../../../shared/src/protocol/messages.js';
import { isValidIfname } from '../../../shared/src/protocol/names.js';
import { tryLockFile } from '../requests/quota-lock.js';
import type { ProcessRef } from './store.js';

/** The ledger's directory is not one only root controls: the helper refuses to start. */
export class LedgerError extends CodedError<'LEDGER_UNSAFE'> {
  override readonly name = 'LedgerError';
}

export interface LedgerEntry {
  readonly tap: string;
  readonly bridge: string;
  readonly type: 'brctl' | 'ovs';
  /** The tap's interface index; absent in an intent (the tap is about to be made). */
  readonly ifindex?: number;
  /** Whose request made it. */
  readonly uid: number;
  /** "fd": handed over as file descriptors (issue 11), so it lives as long as they do. */
  readonly lifetime: Lifetime | 'fd';
  readonly session?: string;
  /** The helper process that made it. */
  readonly helper: ProcessRef;
  /** When the entry was written (ISO 8601). */
  readonly time: string;
  /** Made for a request that never got its reply: to be removed (counted until it is gone). */
  readonly orphan?: true;
  /** What the policy granted it, where it says more than a plain tap: queues (> 1), its VLAN, the MAC it is locked to. */
  readonly queues?: number;
  readonly vlan?: number;
  readonly mac?: string;
}

/** What the ledger needs to know about devices now (NetOps gives it, from /sys). */
export interface Devices {
  /** The ifindex of the device named `name`, undefined when there is none. */
  ifindex(name: string): number | undefined;
  /** Whether `name` is a tun device in tap mode. */
  isTap(name: string): boolean;
}

/** Takes a lock file (non-blocking); the release, or undefined when someone else holds it. */
export type Locker = (path: string) => (() => void) | undefined;

export interface LedgerOptions {
  readonly lock?: Locker;
  /** A ledger file or entry that cannot be trusted (it is skipped). */
  readonly onBad?: (file: string, why: string) => void;
}

const MAX_IFINDEX = 0x7fff_ffff;
const MAX_ID = 0xffff_fffe;
const UID_FILE = /^(0|[1-9][0-9]{0,9})\.json$/;

function isProcessRef(p: unknown): p is ProcessRef {
  if (typeof p !== 'object' || p === null) return false;
  const { pid, start } = p as Partial<ProcessRef>;
  return Number.isInteger(pid) && (pid as number) > 0 && typeof start === 'string' && /^[0-9]{1,20}$/.test(start);
}

/** Why `value` is not an entry of `uid`'s file, or undefined when it is one. */
function entryProblem(value: unknown, uid: number): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const e = value as Partial<Record<keyof LedgerEntry, unknown>>;
  if (!isValidIfname(e.tap) || !isValidIfname(e.bridge)) return 'a bad tap or bridge name';
  if (e.type !== 'brctl' && e.type !== 'ovs') return 'a bad type';
  if (e.ifindex !== undefined && !(Number.isInteger(e.ifindex) && (e.ifindex as number) > 0 && (e.ifindex as number) <= MAX_IFINDEX)) return 'a bad ifindex';
  if (e.uid !== uid) return `uid ${String(e.uid)} in the file of uid ${uid}`;
  if (e.lifetime !== 'session' && e.lifetime !== 'persistent' && e.lifetime !== 'fd') return 'a bad lifetime';
  if (e.session !== undefined && !(typeof e.session === 'string' && /^[0-9a-f]{16}$/.test(e.session))) return 'a bad session id';
  if (!isProcessRef(e.helper)) return 'a bad helper process';
  if (typeof e.time !== 'string') return 'a bad time';
  if (e.queues !== undefined && !(Number.isInteger(e.queues) && (e.queues as number) >= 2 && (e.queues as number) <= 16)) return 'a bad queues';
  if (e.vlan !== undefined && !(Number.isInteger(e.vlan) && (e.vlan as number) >= 1 && (e.vlan as number) <= 4094)) return 'a bad vlan';
  if (e.mac !== undefined && !(typeof e.mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(e.mac))) return 'a bad mac';
  if (e.orphan !== undefined && e.orphan !== true) return 'a bad orphan mark';
  return undefined;
}

export class Ledger {
  readonly dir: string;
  readonly #lock: Locker;
  readonly #onBad: (file: string, why: string) => void;

  /** Opens (creating it if need be) `<stateDir>/ledger`, which must be a directory only this user may change. */
  constructor(stateDir: string, options: LedgerOptions = {}) {
    this.dir = join(stateDir, 'ledger');
    this.#lock = options.lock ?? tryLockFile;
    this.#onBad = options.onBad ?? (() => undefined);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(this.dir);
    const me = process.geteuid?.();
    if (!st.isDirectory() || (me !== undefined && st.uid !== me) || (st.mode & 0o022) !== 0) {
      throw new LedgerError('LEDGER_UNSAFE', `the ledger directory ${this.dir} must be a directory owned by uid ${me ?? '?'} that no one else may write to`);
    }
  }

  lockFile(uid: number): string {
    return join(this.dir, `${checkUid(uid)}.lock`);
  }

  #file(uid: number): string {
    return join(this.dir, `${checkUid(uid)}.json`);
  }

  /** The uid's lock (flock, not waited for): its release, or undefined while another holds it. */
  tryLock(uid: number): (() => void) | undefined {
    return this.#lock(this.lockFile(uid));
  }

  /** The uids that have a ledger file. */
  uids(): number[] {
    return readdirSync(this.dir).filter((n) => UID_FILE.test(n)).map((n) => Number(n.slice(0, -5))).filter((u) => u <= MAX_ID).sort((a, b) => a - b);
  }

  /** The uid's entries as on disk (no lock needed); a bad file or entry is reported and skipped. */
  read(uid: number): LedgerEntry[] {
    const file = this.#file(uid);
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') return [];
      this.#onBad(file, `unreadable: ${(error as Error).message}`);
      return [];
    }
    const entries = (value as { entries?: unknown } | null)?.entries;
    if ((value as { version?: unknown } | null)?.version !== 1 || (value as { uid?: unknown }).uid !== uid || !Array.isArray(entries)) {
      this.#onBad(file, 'not a ledger file of this uid');
      return [];
    }
    const out: LedgerEntry[] = [];
    for (const entry of entries as unknown[]) {
      const problem = entryProblem(entry, uid);
      if (problem === undefined) out.push(entry as LedgerEntry);
      else this.#onBad(file, `an entry with ${problem}: skipped`);
    }
    return out;
  }

  /** Replaces the uid's file atomically (removes it when empty). Only under the uid's lock. */
  write(uid: number, entries: readonly LedgerEntry[]): void {
    const file = this.#file(uid);
    if (entries.length === 0) {
      try {
        unlinkSync(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException | null)?.code !== 'ENOENT') throw error;
      }
      return;
    }
    const temp = `${file}.tmp`;
    writeFileSync(temp, JSON.stringify({ version: 1, uid, entries }), { mode: 0o600 });
    renameSync(temp, file);
  }

  /** Interface indexes recorded by completed entries of every uid but `except`. */
  claimed(except: number): Set<number> {
    const out = new Set<number>();
    for (const uid of this.uids()) {
      if (uid === except) continue;
      for (const e of this.read(uid)) if (e.ifindex !== undefined) out.add(e.ifindex);
    }
    return out;
  }

  /** The uid's entries, to change under its lock (the caller holds it). */
  open(uid: number): Book {
    return new Book(this, uid, this.read(uid));
  }
}

function checkUid(uid: number): number {
  if (!Number.isInteger(uid) || uid < 0 || uid > MAX_ID) throw new Error(`not a uid: ${uid}`);
  return uid;
}

/** One uid's entries, read and changed while its lock is held; `save` writes them back. */
export class Book {
  readonly uid: number;
  readonly #ledger: Ledger;
  #entries: LedgerEntry[];
  #changed = false;

  constructor(ledger: Ledger, uid: number, entries: LedgerEntry[]) {
    this.#ledger = ledger;
    this.uid = uid;
    this.#entries = entries;
  }

  get entries(): readonly LedgerEntry[] {
    return this.#entries;
  }

  get hasIntents(): boolean {
    return this.#entries.some((e) => e.ifindex === undefined);
  }

  /**
   * Under the lock: resolves every intent by the rule at the top of this file (into an orphan
   * entry, or dropped) and drops entries whose tap no longer exists. Returns the new orphans.
   * Dropped fd taps on Open vSwitch go into `vanished`: their port records outlive them, and
   * whoever settles removes them (records/fdtaps.ts).
   */
  settle(devices: Devices, vanished?: LedgerEntry[]): LedgerEntry[] {
    let claimed: Set<number> | undefined;
    const orphans: LedgerEntry[] = [];
    const kept: LedgerEntry[] = [];
    for (const e of this.#entries) {
      if (e.ifindex !== undefined) {
        if (devices.ifindex(e.tap) === e.ifindex) kept.push(e);
        else if (e.lifetime === 'fd' && e.type === 'ovs') vanished?.push(e);
        continue;
      }
      claimed ??= this.#claimed();
      const ifindex = devices.ifindex(e.tap);
      if (ifindex === undefined || claimed.has(ifindex) || !devices.isTap(e.tap)) continue;
      const orphan: LedgerEntry = { ...e, ifindex, orphan: true };
      claimed.add(ifindex);
      kept.push(orphan);
      orphans.push(orphan);
    }
    if (kept.length !== this.#entries.length || orphans.length > 0) this.#changed = true;
    this.#entries = kept;
    return orphans;
  }

  #claimed(): Set<number> {
    const out = this.#ledger.claimed(this.uid);
    for (const e of this.#entries) if (e.ifindex !== undefined) out.add(e.ifindex);
    return out;
  }

  /** Taps held: the entries (after settle: all exist), leaving out the names in `except`. */
  held(except: ReadonlySet<string>): number {
    return this.#entries.filter((e) => !except.has(e.tap)).length;
  }

  /** Adds an intent. */
  intend(entry: Omit<LedgerEntry, 'ifindex' | 'orphan'>): void {
    this.#entries.push(entry);
    this.#changed = true;
  }

  /** Removes the intent for `tap`. */
  drop(tap: string): void {
    const before = this.#entries.length;
    this.#entries = this.#entries.filter((e) => !(e.tap === tap && e.ifindex === undefined));
    if (this.#entries.length !== before) this.#changed = true;
  }

  /**
   * The intent for `tap` becomes an entry with its ifindex (`orphan`: for a request that failed);
   * an undefined ifindex (the tap is already gone) drops it. Returns the entry.
   */
  complete(tap: string, ifindex: number | undefined, orphan = false): LedgerEntry | undefined {
    const i = this.#entries.findIndex((e) => e.tap === tap && e.ifindex === undefined);
    if (i < 0) return undefined;
    this.#changed = true;
    if (ifindex === undefined) {
      this.#entries.splice(i, 1);
      return undefined;
    }
    const entry: LedgerEntry = { ...this.#entries[i]!, ifindex, ...(orphan ? { orphan: true as const } : {}) };
    this.#entries[i] = entry;
    return entry;
  }

  /** Writes the entries back if they changed. */
  save(): void {
    if (!this.#changed) return;
    this.#ledger.write(this.uid, this.#entries);
    this.#changed = false;
  }
}
