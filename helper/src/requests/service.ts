/**
 * The two operations, for an identified caller, within the policy: make-nics (policy, quota
 * counted by the ledger, all-or-nothing creation, session bookkeeping) and ovs-cleanup (callers
 * the policy names, their own ports only). Each request leaves exactly one audit record.
 */
import { ErrorCode } from '../../../shared/src/protocol/codes.js';
import { ProtocolError } from '../../../shared/src/protocol/error.js';
import { formatMacLockRefusal } from '../../../shared/src/protocol/mac-lock.js';
import type { MakeNicsRequest, Nic, OvsCleanupRequest, Reply, Request } from '../../../shared/src/protocol/messages.js';
import type { AuditLog } from '../audit/audit.js';
import type { PlannedTap } from '../net/linuxtaps.js';
import { decide, macLocked, maxQueues, maxTaps, standing, vlanFor } from '../policy/evaluate.js';
import type { Policy, PolicyUser, RuleSource } from '../policy/types.js';
import { closeFds } from '../net/fdtaps.js';
import type { LinkWatch, LinkWatchOptions } from '../net/linkwatch.js';
import { FdTaps } from '../records/fdtaps.js';
import type { Book, Ledger, LedgerEntry } from '../records/ledger.js';
import { entryTargets, removeTargets, targetsFrom, type Target } from '../records/removal.js';
import type { ProcessRef, SessionStore } from '../records/store.js';
import type { Caller } from '../identity/caller.js';
import { toWireError } from './wire-error.js';
import type { NetOps, TapOutcome } from './net-ops.js';
import type { PolicyHolder } from '../policy/holder.js';

/** The taps a connection holds with lifetime "session". */
export interface Session {
  id: string;
  nics: Nic[];
  /**
   * Why this connection cannot carry file descriptors (fd handoff is then BAD_REQUEST saying
   * so); undefined when it can (the connection sends them: transport/connection.ts).
   */
  fdRefusal?: string | undefined;
}

export interface ServiceDeps {
  policy: PolicyHolder;
  net: NetOps;
  audit: AuditLog;
  store: SessionStore;
  /** What the helpers created, and the per-uid locks (records/ledger.ts). */
  ledger: Ledger;
  helper: ProcessRef;
  log: (message: string) => void;
  /** How long a request waits for its user's lock while another helper holds it (default 10 s). */
  lockWaitMs?: number;
  /**
   * Starts the link watcher for fd taps (records/fdtaps.ts; default: net/linkwatch.ts).
   * @internal Tests with a stand-in network.
   */
  linkWatch?: (options: LinkWatchOptions) => LinkWatch;
}

/**
 * Most requests in one batch (each up to 64 taps): bounds one ip batch and one wait.
 * @internal Exported for the test that fills more than one batch.
 */
export const MAX_BATCH = 32;

const LOCK_WAIT_MS = 10_000;
/**
 * A request whose user's lock is held elsewhere tries again after 10 ms, then twice as long each
 * time up to 500 ms: a user whose own helper sits stopped on the lock cannot make this helper
 * spin (16 connections retrying every 10 ms would be 1600 batches a second).
 */
const LOCK_RETRY_MS = 10;
const LOCK_RETRY_MAX_MS = 500;

/** A make-nics request allowed by the policy, waiting for its taps. */
interface Waiting {
  readonly request: MakeNicsRequest;
  readonly caller: Caller;
  readonly session: Session;
  /** "fd": handed over as fds (handoff "fd"), living as long as they do. */
  readonly lifetime: 'session' | 'persistent' | 'fd';
  readonly limit: number;
  /** What the policy adds to each nic (#grants). */
  readonly grants: readonly Grant[];
  /** The MAC each nic's tap is locked to (mac-lock), undefined where it is not. */
  readonly macs: readonly (string | undefined)[];
  /** When it first tried to take its user's lock (Date.now()). */
  readonly since: number;
  /** How many times it found its user's lock held elsewhere. */
  retries: number;
  readonly resolve: (made: Made) => void;
  readonly reject: (error: unknown) => void;
}

/** A request's nics, and for fd handoff each tap's fds (one a queue, in reply order). */
interface Made {
  readonly nics: Nic[];
  readonly fds: readonly (readonly number[])[];
}

/** The taps a request's intents name now, by slot (its bridges' positions). */
type Intents = Map<number, string>;

export class Service {
  readonly #deps: ServiceDeps;
  /**
   * make-nics requests that arrived while a batch was being made; they go together into the
   * next one (group commit: of 16 requests at once, the last waits for a few batches, not for
   * 15 others one by one).
   */
  #waiting: Waiting[] = [];
  #making = false;
  /**
   * Taps being removed right now (a deletion waits ~30 ms a tap in the kernel): they no longer
   * count against their creator's max-taps, so a user who ends a VM and starts another is not
   * refused for taps on their way out.
   */
  readonly #removing = new Set<string>();
  /**
   * The ifindex of each session tap this process made, as the ledger recorded it (the ledger may
   * drop an entry once its tap is gone; this does not forget until the session ends).
   */
  readonly #sessionTaps = new Map<string, number>();
  /** Per uid, the ovs-cleanup running or last queued: one user's clean-ups run one at a time. */
  readonly #cleanups = new Map<number, Promise<void>>();
  /** The fds of fd-handoff replies, until the connection takes them to send (takeFds). */
  readonly #replyFds = new WeakMap<Reply, readonly number[]>();
  /** The fd taps this process handed over, watched until they die (records/fdtaps.ts). */
  readonly fdTaps: FdTaps;

  constructor(deps: ServiceDeps) {
    this.#deps = deps;
    this.fdTaps = new FdTaps({
      ledger: deps.ledger, net: deps.net, audit: deps.audit, log: deps.log, ovsdbOption: () => deps.policy.ovsdbOption(),
      onOrphans: (orphans) => void this.#removeOrphans(orphans),
      ...(deps.linkWatch === undefined ? {} : { watch: deps.linkWatch }),
    });
  }

  /**
   * The fds to send with `reply` (fd handoff: one a queue, nic by nic), now the caller's: it
   * sends them and closes them, sent or not. Undefined for any other reply.
   */
  takeFds(reply: Reply): readonly number[] | undefined {
    const fds = this.#replyFds.get(reply);
    this.#replyFds.delete(reply);
    return fds;
  }

  #policy(): Policy {
    const current = this.#deps.policy.current();
    if ('error' in current) {
      throw new ProtocolError(ErrorCode.Denied, `the helper's policy (${this.#deps.policy.file}) is broken, so everything is denied until an admin fixes it`);
    }
    this.#deps.audit.setFile(current.policy.auditLog?.value);
    return current.policy;
  }

  async handle(request: Request, caller: Caller, session: Session): Promise<Reply> {
    const who = { uid: caller.uid, user: caller.user.name, pid: caller.pid, transport: caller.transport };
    try {
      const reply = request.op === 'make-nics'
        ? await this.#makeNics(request, caller, session)
        : await this.#ovsCleanup(request, caller);
      return reply;
    } catch (error) {
      const wire = toWireError(error, this.#deps.log);
      this.#deps.audit.write({ event: 'request', op: request.op, caller: who, request: summary(request), decision: wire.code === ErrorCode.Denied ? 'deny' : undefined, result: 'error', code: wire.code, message: wire.message });
      return { v: 1, id: request.id, ok: false, error: { code: wire.code, message: wire.message } };
    }
  }

  async #makeNics(request: MakeNicsRequest, caller: Caller, session: Session): Promise<Reply> {
    const policy = this.#policy();
    const lifetime = request.handoff === 'fd' ? 'fd' : request.lifetime ?? 'session';
    const user = { name: caller.user.name, uid: caller.uid, groups: caller.user.groups };
    if (request.handoff === 'fd' && session.fdRefusal !== undefined) {
      throw new ProtocolError(ErrorCode.BadRequest, session.fdRefusal);
    }
    const decisions = request.nics.map(({ bridge }) => ({ bridge, decision: decide(policy, user, bridge) }));
    const denied = decisions.find((d) => !d.decision.allowed);
    if (denied !== undefined) {
      const where = denied.decision.rule === undefined
        ? ` (policy ${this.#deps.policy.file})`
        : ` (${denied.decision.rule.file}:${denied.decision.rule.line})`;
      throw new ProtocolError(ErrorCode.Denied, `${caller.user.name} may not put a tap on ${denied.bridge}: ${denied.decision.reason}${where}`);
    }
    const grants = this.#grants(policy, user, request);
    const limit = maxTaps(policy, user).limit;
    // The MAC each tap is locked to: the request's, where the policy says mac-lock.
    const macs = grants.map((g, i) => (g.macLock === undefined ? undefined : request.nics[i]?.mac));
    const { nics, fds } = await new Promise<Made>((resolve, reject) => {
      this.#waiting.push({ request, caller, session, lifetime, limit, grants, macs, since: Date.now(), retries: 0, resolve, reject });
      if (!this.#making) void this.#makeWaiting();
    });
    if (lifetime === 'session') {
      session.nics.push(...nics);
      this.#record(session, caller);
    }
    this.#deps.audit.write({
      event: 'request', op: 'make-nics', caller: { uid: caller.uid, user: caller.user.name, pid: caller.pid, transport: caller.transport },
      request: summary(request), decision: 'allow', rules: decisions.map((d) => d.decision.rule && `${d.decision.rule.file}:${d.decision.rule.line}`),
      result: 'ok', lifetime, taps: nics,
    });
    const reply: Reply = { v: 1, id: request.id, ok: true, nics };
    if (lifetime === 'fd') this.#replyFds.set(reply, fds.flat());
    return reply;
  }

  /**
   * What the policy adds to each tap asked for (VLAN, MAC lock, queues within max-queues), checked
   * before anything is made: nics without a MAC on mac-locked bridges are BAD_REQUEST naming all
   * of them with their mac-lock lines (checked first), more queues than max-queues is QUOTA, two
   * VLANs from two of the user's groups DENIED naming both.
   */
  #grants(policy: Policy, user: PolicyUser, request: MakeNicsRequest): Grant[] {
    const queueLimit = maxQueues(policy, user);
    // Every nic without a MAC on a mac-locked bridge, named in one refusal (the client gives them
    // MACs and asks once more: shared/src/protocol/mac-lock.ts).
    const locks = request.nics.map((nic) => macLocked(policy, user, nic.bridge));
    const missing = request.nics.flatMap((nic, index) => {
      const lock = locks[index];
      return lock === undefined || nic.mac !== undefined ? [] : [{ index, bridge: nic.bridge, rule: `${lock.file}:${lock.line}` }];
    });
    if (missing.length > 0) throw new ProtocolError(ErrorCode.BadRequest, formatMacLockRefusal({ user: user.name, missing }));
    // A lock makes the MAC the tap's own for as long as it exists (a static FDB entry, or the
    // OVS flows): a universally administered MAC is some real NIC's (a router's, a host's), whose
    // traffic the lock would draw to this tap once the bridge has forgotten where it is. Guests'
    // MACs are locally administered (qemu's 52:54:00:…, the client's random ones).
    for (const [index, nic] of request.nics.entries()) {
      const lock = locks[index];
      if (lock !== undefined && nic.mac !== undefined && !locallyAdministered(nic.mac)) {
        throw new ProtocolError(ErrorCode.BadRequest, `nics[${index}].mac ${nic.mac} is a universally administered address (a real NIC's); ` +
          `under mac-lock on ${nic.bridge} (${lock.file}:${lock.line}) a guest's MAC must be locally administered (second-lowest bit of the first octet set, as qemu's 52:54:00:…)`);
      }
    }
    return request.nics.map((nic, i) => {
      const queues = nic.queues ?? 1;
      if (queues > queueLimit.limit) {
        const where = queueLimit.rule === undefined ? 'the built-in default' : `${queueLimit.rule.file}:${queueLimit.rule.line}`;
        throw new ProtocolError(ErrorCode.Quota, `${user.name} may ask for at most ${queueLimit.limit} queues a tap (max-queues, ${where}); nics[${i}] on ${nic.bridge} asks for ${queues}`);
      }
      const macLock = locks[i];
      const vlan = vlanFor(policy, user, nic.bridge);
      if (vlan !== undefined && 'conflict' in vlan) {
        throw new ProtocolError(ErrorCode.Denied, `${user.name} may not put a tap on ${nic.bridge} until an admin fixes the policy: ${vlan.reason}`);
      }
      return {
        bridge: nic.bridge, queues,
        ...(vlan === undefined ? {} : { vlan: { vid: vlan.vid, rule: vlan.rule } }),
        ...(macLock === undefined ? {} : { macLock }),
      };
    });
  }

  /** Makes the waiting requests' taps, a batch at a time, until none is waiting. */
  async #makeWaiting(): Promise<void> {
    this.#making = true;
    try {
      while (this.#waiting.length > 0) await this.#makeBatch(this.#waiting.splice(0, MAX_BATCH));
    } finally {
      this.#making = false;
    }
  }

  /**
   * Count, record and create, each user under their own lock (other helper processes count the
   * same ledger). The locks are taken in ascending uid order and never waited for here: a
   * request whose user's lock another helper holds steps out of the batch and tries again in a
   * later one (#retry), so one user's stuck helper delays nobody else. Under the locks, each
   * request in arrival order is within its user's max-taps (the ledger's taps that still exist,
   * plus those before it in the batch) or refused with QUOTA; the rest are made together, their
   * taps recorded as intents before ip runs and completed with their ifindexes after.
   */
  async #makeBatch(batch: Waiting[]): Promise<void> {
    const locks = new Map<number, () => void>();
    const books = new Map<number, Book>();
    const orphans: LedgerEntry[] = [];
    const vanished: LedgerEntry[] = [];
    /** Fds opened for requests not resolved (yet): closed at the end, which removes their taps. */
    const opened = new Map<number, readonly (readonly number[])[]>();
    try {
      for (const uid of [...new Set(batch.map((w) => w.caller.uid))].sort((a, b) => a - b)) {
        const release = this.#deps.ledger.tryLock(uid);
        if (release !== undefined) locks.set(uid, release);
      }
      const counts = new Map<number, number>();
      for (const uid of locks.keys()) {
        const book = this.#deps.ledger.open(uid);
        books.set(uid, book);
        orphans.push(...book.settle(this.#deps.net, vanished));
        counts.set(uid, book.held(this.#removing));
      }
      const accepted: Waiting[] = [];
      for (const w of batch) {
        const held = counts.get(w.caller.uid);
        if (held === undefined) {
          this.#retry(w);
          continue;
        }
        if (held + w.request.nics.length > w.limit) {
          w.reject(new ProtocolError(ErrorCode.Quota, `${w.caller.user.name} holds ${held} tap(s); ${w.request.nics.length} more would exceed max-taps ${w.limit}`));
          continue;
        }
        counts.set(w.caller.uid, held + w.request.nics.length);
        accepted.push(w);
      }
      // What settle changed is written with the intents (or, if none come, at the end).
      if (accepted.length === 0) return;
      const intents = accepted.map((): Intents => new Map());
      const outcomes = await this.#deps.net.createTaps(accepted.map((w) => ({
        bridges: w.request.nics.map((n) => n.bridge),
        queues: w.request.nics.map((n) => n.queues ?? 1),
        vlans: w.grants.map((g) => g.vlan?.vid),
        ...(w.macs.some((m) => m !== undefined) ? { macs: w.macs } : {}),
        owner: { uid: w.caller.uid, gid: w.caller.gid },
        ...(w.lifetime === 'session' ? { session: w.session.id } : {}),
        ...(w.lifetime === 'fd' ? { fd: true } : {}),
      })), { ...this.#deps.policy.ovsdbOption(), beforeCreate: (taps) => this.#intend(taps, accepted, intents, books) });
      for (const [i, outcome] of outcomes.entries()) if (outcome !== undefined && 'nics' in outcome && outcome.fds !== undefined) opened.set(i, outcome.fds);
      const settled = accepted.map((w, i) => this.#complete(intents[i]!, outcomes[i], books.get(w.caller.uid)!, orphans));
      // The ledger first: a tap whose entry could not be written is not handed out.
      const unsaved = new Set<number>();
      for (const [uid, book] of books) {
        try {
          book.save();
        } catch (error) {
          unsaved.add(uid);
          this.#deps.log(`cannot write the ledger of uid ${uid}: ${(error as Error).message}`);
        }
      }
      for (const [i, w] of accepted.entries()) {
        const made = settled[i]!;
        if ('error' in made) {
          w.reject(made.error);
          continue;
        }
        if (!unsaved.has(w.caller.uid)) {
          if (w.lifetime === 'session') for (const e of made.entries) this.#sessionTaps.set(e.tap, e.ifindex!);
          // From here the connection owns the fds; the taps are watched until they die.
          const fds = opened.get(i) ?? [];
          opened.delete(i);
          if (w.lifetime === 'fd') this.fdTaps.add(made.entries);
          // A multi-queue tap says so in the reply (qemu's -netdev tap,queues=N must match), a
          // mac-locked one its MAC.
          w.resolve({
            nics: made.nics.map((nic, k) => {
              const queues = w.request.nics[k]?.queues ?? 1;
              const mac = w.macs[k];
              return { ...nic, ...(queues > 1 ? { queues } : {}), ...(mac === undefined ? {} : { mac }) };
            }),
            fds,
          });
          continue;
        }
        orphans.push(...made.entries);
        w.reject(new ProtocolError(ErrorCode.SystemError, `the helper could not record ${w.caller.user.name}'s new taps in its ledger (${this.#deps.ledger.dir}), so they are being removed`));
      }
    } catch (error) {
      // Settled requests ignore this.
      for (const w of batch) w.reject(error);
    } finally {
      for (const book of books.values()) {
        // Intents left by something that threw between recording and completing them: what
        // they name is resolved as after a crash.
        try {
          if (book.hasIntents) orphans.push(...book.settle(this.#deps.net));
          book.save();
        } catch (error) {
          this.#deps.log(`cannot write the ledger of uid ${book.uid}: ${(error as Error).message}`);
        }
      }
      for (const release of locks.values()) release();
      // Fd taps not handed out go with their fds (their ledger entries, if any, are orphans).
      for (const fds of opened.values()) closeFds(fds.flat());
      if (orphans.length > 0) void this.#removeOrphans(orphans);
      if (vanished.length > 0) void this.fdTaps.removePorts(vanished);
    }
  }

  /**
   * Its user's lock is held by another helper process: try again in a later batch, until
   * lockWaitMs after the first try; then fail alone, naming the lock.
   */
  #retry(w: Waiting): void {
    const limit = this.#deps.lockWaitMs ?? LOCK_WAIT_MS;
    if (Date.now() - w.since >= limit) {
      w.reject(new ProtocolError(ErrorCode.SystemError,
        `another helper process has held the lock on ${w.caller.user.name}'s taps (${this.#deps.ledger.lockFile(w.caller.uid)}) for more than ${limit / 1000} s; try again`));
      return;
    }
    const delay = Math.min(LOCK_RETRY_MS * 2 ** w.retries, LOCK_RETRY_MAX_MS);
    w.retries += 1;
    setTimeout(() => {
      this.#waiting.push(w);
      if (!this.#making) void this.#makeWaiting();
    }, delay);
  }

  /** beforeCreate: records the taps an ip batch is about to create as intents, and saves them. */
  #intend(taps: readonly PlannedTap[], accepted: readonly Waiting[], intents: readonly Intents[], books: ReadonlyMap<number, Book>): void {
    const touched = new Set<Book>();
    const time = new Date().toISOString();
    for (const t of taps) {
      const w = accepted[t.job];
      const mine = intents[t.job];
      const book = w === undefined ? undefined : books.get(w.caller.uid);
      if (w === undefined || mine === undefined || book === undefined) throw new Error(`a tap planned for request ${t.job}, which is not in the batch`);
      const previous = mine.get(t.slot);
      if (previous !== undefined) book.drop(previous);
      mine.set(t.slot, t.tap);
      const grant = w.grants[t.slot];
      const mac = w.macs[t.slot];
      book.intend({
        tap: t.tap, bridge: t.bridge, type: t.kind === 'ovs' ? 'ovs' : 'brctl', uid: w.caller.uid, lifetime: w.lifetime,
        ...(w.lifetime === 'session' ? { session: w.session.id } : {}), helper: this.#deps.helper, time,
        // What the policy granted, for `xkvm-helper status`.
        ...(grant !== undefined && grant.queues > 1 ? { queues: grant.queues } : {}),
        ...(grant?.vlan === undefined ? {} : { vlan: grant.vlan.vid }), ...(mac === undefined ? {} : { mac }),
      });
      touched.add(book);
    }
    for (const book of touched) this.#save(book);
  }

  /** Writes a book back; a failure is SYSTEM_ERROR for the requests of the batch. */
  #save(book: Book): void {
    try {
      book.save();
    } catch (error) {
      throw new ProtocolError(ErrorCode.SystemError, `the helper cannot write its ledger (${this.#deps.ledger.dir}): ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * A request's outcome into its user's ledger: its intents completed with the taps' ifindexes,
   * or, when it failed, dropped, except the taps that could not be removed (orphans, to remove).
   */
  #complete(intents: Intents, outcome: TapOutcome | undefined, book: Book, orphans: LedgerEntry[]):
    { nics: Nic[]; entries: LedgerEntry[] } | { error: unknown } {
    if (outcome === undefined || 'error' in outcome) {
      for (const left of outcome?.left ?? []) {
        const orphan = book.complete(left.tap, left.ifindex, true);
        if (orphan !== undefined) orphans.push(orphan);
      }
      for (const tap of intents.values()) book.drop(tap);
      return { error: outcome?.error ?? new Error('the network layer gave no outcome for a request') };
    }
    const entries: LedgerEntry[] = [];
    for (const [b, nic] of outcome.nics.entries()) {
      const entry = book.complete(nic.tap, outcome.ifindexes[b]);
      if (entry !== undefined) entries.push(entry);
    }
    return { nics: outcome.nics, entries };
  }

  async #ovsCleanup(request: OvsCleanupRequest, caller: Caller): Promise<Reply> {
    const policy = this.#policy();
    const rule = standing(policy, { name: caller.user.name, uid: caller.uid, groups: caller.user.groups });
    if (rule === undefined) {
      throw new ProtocolError(ErrorCode.Denied, `${caller.user.name} may not clean up OVS ports: no allow line of the policy (${this.#deps.policy.file}) names them`);
    }
    return this.#oneAtATime(caller.uid, async () => {
      const { removed, refused } = await this.#deps.net.ovsCleanup(request.ports, { uid: caller.uid }, this.#deps.policy.ovsdbOption());
      if (removed.length === 0 && refused.length > 0) {
        // handle() audits the error reply.
        const first = refused[0]!;
        throw new ProtocolError(first.code === 'NO_SUCH_PORT' ? ErrorCode.NoSuchPort : ErrorCode.NotOwner,
          refused.map((r) => `${r.bridge}:${r.tap}: ${r.message}`).join('; '));
      }
      this.#deps.audit.write({
        event: 'request', op: 'ovs-cleanup', caller: { uid: caller.uid, user: caller.user.name, pid: caller.pid, transport: caller.transport },
        request: summary(request), decision: 'allow', rules: [`${rule.file}:${rule.line}`], result: 'ok', removed, refused,
      });
      return { v: 1, id: request.id, ok: true, removed };
    });
  }

  /** Runs `work` after the uid's clean-ups before it: one user's clean-ups run one at a time. */
  async #oneAtATime<T>(uid: number, work: () => Promise<T>): Promise<T> {
    const run = (this.#cleanups.get(uid) ?? Promise.resolve()).then(work);
    const tail = run.then(() => undefined, () => undefined);
    this.#cleanups.set(uid, tail);
    try {
      return await run;
    } finally {
      if (this.#cleanups.get(uid) === tail) this.#cleanups.delete(uid);
    }
  }

  #record(session: Session, caller: Caller): void {
    this.#deps.store.write({
      version: 1, id: session.id, uid: caller.uid,
      client: { pid: caller.pid, start: caller.start.toString() },
      helper: this.#deps.helper,
      nics: session.nics,
    });
  }

  /**
   * Delete taps by the ledger's (name, ifindex), whoever owns them now, and audit the outcome:
   * "ok" only when every one is gone. True when they are.
   */
  async #remove(targets: Target[], uid: number, user: string | undefined, audit: Record<string, unknown> & { event: string }): Promise<boolean> {
    const nics = targets.map((t) => t.nic);
    const taps = nics.map((n) => n.tap).filter((t) => !this.#removing.has(t));
    for (const t of taps) this.#removing.add(t);
    try {
      const removal = await removeTargets(this.#deps.net, targets, this.#deps.policy.ovsdbOption());
      const who = { uid, ...(user === undefined ? {} : { user }) };
      if (removal.problem === undefined) {
        this.#deps.audit.write({ ...audit, ...who, result: 'ok', taps: nics });
        return true;
      }
      this.#deps.audit.write({ ...audit, ...who, result: 'error', message: removal.problem, taps: nics, left: removal.failed });
      return false;
    } catch (error) {
      this.#deps.audit.write({ ...audit, uid, result: 'error', message: (error as Error).message, taps: nics });
      return false;
    } finally {
      for (const t of taps) this.#removing.delete(t);
    }
  }

  /** The ledger's targets for `nics`, made for `uid`. */
  #targets(nics: readonly Nic[], uid: number): Target[] {
    return targetsFrom(nics, this.#deps.ledger.read(uid));
  }

  /** A session's targets, as this process recorded them (then forgotten). */
  #sessionTargets(nics: readonly Nic[], uid: number): Target[] {
    const fromLedger = nics.every((n) => this.#sessionTaps.has(n.tap)) ? [] : this.#targets(nics, uid);
    const targets = nics.map((nic, i) => ({ nic, ifindex: this.#sessionTaps.get(nic.tap) ?? fromLedger[i]?.ifindex }));
    for (const n of nics) this.#sessionTaps.delete(n.tap);
    return targets;
  }

  /** Orphans found in the ledger (taps whose request never got its reply): removed now. */
  async #removeOrphans(orphans: readonly LedgerEntry[]): Promise<void> {
    for (const uid of [...new Set(orphans.map((o) => o.uid))]) {
      const mine = orphans.filter((o) => o.uid === uid);
      await this.#remove(entryTargets(mine), uid, undefined, { event: 'orphans-removed', why: 'made for a request that never got its reply' });
    }
  }

  /** Remove taps made for a request whose reply could not be delivered. */
  async discard(nics: Nic[], caller: Caller, why: string): Promise<void> {
    await this.#remove(this.#targets(nics, caller.uid), caller.uid, caller.user.name, { event: 'undelivered', why });
  }

  /** The connection ended: remove the session's taps and ports, then its record. */
  async endSession(session: Session, caller: Caller | undefined, why: string): Promise<void> {
    // A session gets taps only after its caller was identified.
    if (session.nics.length === 0 || caller === undefined) return;
    const nics = session.nics.splice(0);
    if (!(await this.#remove(this.#sessionTargets(nics, caller.uid), caller.uid, caller.user.name, { event: 'session-end', session: session.id, why }))) return;
    try {
      this.#deps.store.remove(session.id);
    } catch (error) {
      // The taps are gone; a helper that starts after this one finds the record and its client gone.
      this.#deps.audit.write({ event: 'session-record', session: session.id, uid: caller.uid, result: 'error', message: `cannot remove the session record: ${(error as Error).message}` });
    }
  }
}

/** Whether a MAC (validated: six hex pairs) has the locally administered bit of its first octet set. */
function locallyAdministered(mac: string): boolean {
  return (Number.parseInt(mac.slice(0, 2), 16) & 0x02) !== 0;
}

/** What the policy adds to one tap asked for. */
interface Grant {
  readonly bridge: string;
  readonly queues: number;
  readonly vlan?: { readonly vid: number; readonly rule: RuleSource };
  readonly macLock?: RuleSource;
}

function summary(request: Request): Record<string, unknown> {
  if (request.op === 'ovs-cleanup') return { id: request.id, ports: request.ports };
  const options = request.nics.some((n) => n.queues !== undefined || n.mac !== undefined);
  return {
    id: request.id, bridges: request.nics.map((n) => n.bridge), ...(options ? { nics: request.nics } : {}),
    ...(request.handoff === 'fd' ? {} : { lifetime: request.lifetime ?? 'session' }), ...(request.handoff === undefined ? {} : { handoff: request.handoff }),
  };
}
